// The key-customer communication record form (DOMAIN.md §2): kind, when,
// who was met, what happened, what the customer said, problems found and
// agreed next steps. Used from Today and from a deal's move panel; the API
// refuses what is wrong and the error shows at its field.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings } from '../i18n.js';
import { Field, ErrorBanner, useForm } from '../components.js';

addStrings({
  en: {
    'record.title': 'Log a record: {customer}',
    'record.kind': 'Kind',
    'record.kind.visit': 'Visit',
    'record.kind.call': 'Call',
    'record.kind.meeting': 'Meeting',
    'record.kind.message': 'Message',
    'record.at': 'When',
    'record.contact': 'Who you met',
    'record.summary': 'Summary',
    'record.feedback': "The customer's feedback",
    'record.problems': 'Problems found',
    'record.next_steps': 'Next steps',
    'record.save': 'Save record',
  },
  zh: {
    'record.title': '填写沟通记录：{customer}',
    'record.kind': '方式',
    'record.kind.visit': '拜访',
    'record.kind.call': '电话',
    'record.kind.meeting': '会议',
    'record.kind.message': '消息',
    'record.at': '时间',
    'record.contact': '接洽人',
    'record.summary': '沟通内容',
    'record.feedback': '客户反馈',
    'record.problems': '发现的问题',
    'record.next_steps': '下一步安排',
    'record.save': '保存记录',
  },
});

/** `YYYY-MM-DDTHH:MM` of now in the browser's zone (datetime-local). */
function localNow() {
  const d = new Date();
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

/**
 * The form for `customer` ({id, name}); `onSaved(record)` after the API
 * stored it.
 */
export function RecordForm({ customer, onSaved, onCancel }) {
  const [now] = useState(localNow);
  const form = useForm({ kind: 'visit', at: now, contact: '', summary: '', feedback: '', problems: '', next_steps: '' });
  const { values, set, errors } = form;
  const onSubmit = async (e) => {
    e.preventDefault();
    const body = { kind: values.kind, summary: values.summary };
    for (const k of ['contact', 'feedback', 'problems', 'next_steps']) if (values[k].trim()) body[k] = values[k];
    // Left as shown, the time is "now" to the second, as the server takes
    // it (the field has minutes only: sending 10:05:00 for a contact at
    // 10:05:40 could place it before a deal opened at 10:05:30).
    if (values.at && values.at !== now) body.at = new Date(values.at).toISOString();
    try {
      const record = await form.submit(() => api('POST', `/v1/customers/${encodeURIComponent(customer.id)}/records`, { body }));
      onSaved(record);
    } catch (_) {
      // shown by the form
    }
  };
  const kinds = ['visit', 'call', 'meeting', 'message'].map((k) => ({ value: k, label: t(`record.kind.${k}`) }));
  return html`<form class="record-form" onSubmit=${onSubmit}>
    <${ErrorBanner} error=${form.error} />
    <div class="row">
      <${Field} as="select" label=${t('record.kind')} name="kind" value=${values.kind} onInput=${set('kind')} options=${kinds} error=${errors.kind} />
      <${Field} type="datetime-local" label=${t('record.at')} name="at" value=${values.at} onInput=${set('at')} error=${errors.at} />
    </div>
    <${Field} label=${t('record.contact')} name="contact" value=${values.contact} onInput=${set('contact')} error=${errors.contact} />
    <${Field} as="textarea" label=${t('record.summary')} name="summary" required value=${values.summary} onInput=${set('summary')} error=${errors.summary} />
    <${Field} as="textarea" label=${t('record.feedback')} name="feedback" value=${values.feedback} onInput=${set('feedback')} error=${errors.feedback} />
    <${Field} as="textarea" label=${t('record.problems')} name="problems" value=${values.problems} onInput=${set('problems')} error=${errors.problems} />
    <${Field} as="textarea" label=${t('record.next_steps')} name="next_steps" value=${values.next_steps} onInput=${set('next_steps')} error=${errors.next_steps} />
    <div class="actions">
      <button type="submit" disabled=${form.busy}>${t('record.save')}</button>
      ${onCancel ? html`<button type="button" class="secondary" onClick=${onCancel}>${t('app.cancel')}</button>` : null}
    </div>
  </form>`;
}
