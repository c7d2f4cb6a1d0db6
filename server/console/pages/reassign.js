// Reassigning a customer (a branch's manager or an admin): another rep,
// with a written reason, through PATCH /v1/customers/{id} {owner, reason}
// with the version read (If-Match). The change and its reason are kept in
// the customer's history and announced as an `owner_changed` event
// (business rules §6: no good customer handed to a favourite unseen).

import { html } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings } from '../i18n.js';
import { Field, ErrorBanner, useForm } from '../components.js';
import { useReps } from './board.js';

addStrings({
  en: {
    'reassign.button': 'Reassign',
    'reassign.title': 'Reassign {customer}',
    'reassign.owner': 'New account manager',
    'reassign.reason': 'Reason (kept in the customer’s history)',
    'reassign.save': 'Save the reassignment',
    'reassign.current': 'Now with {owner}.',
  },
  zh: {
    'reassign.button': '重新分配',
    'reassign.title': '重新分配 {customer}',
    'reassign.owner': '新的客户经理',
    'reassign.reason': '原因（记入客户历史）',
    'reassign.save': '保存重新分配',
    'reassign.current': '当前客户经理：{owner}。',
  },
});

/** The form for `customer` (as listed: with `owner`, `branch`, `version`); `onSaved(customer)`. */
export function ReassignForm({ customer, onSaved, onCancel }) {
  const reps = useReps(customer.branch);
  const form = useForm({ owner: '', reason: '' });
  const others = reps.filter((r) => r !== customer.owner);
  const onSubmit = async (e) => {
    e.preventDefault();
    try {
      const c = await form.submit((v) =>
        api('PATCH', `/v1/customers/${encodeURIComponent(customer.id)}`, {
          body: { owner: v.owner, reason: v.reason },
          ifMatch: customer.version,
        }),
      );
      onSaved(c);
    } catch (_) {
      // shown by the form, at its field
    }
  };
  return html`<form novalidate onSubmit=${onSubmit}>
    <p class="muted">${t('reassign.current', { owner: customer.owner || '—' })}</p>
    <${ErrorBanner} error=${form.error} />
    <${Field}
      as="select"
      label=${t('reassign.owner')}
      name="owner"
      required
      value=${form.values.owner}
      onInput=${form.set('owner')}
      error=${form.errors.owner}
      options=${[{ value: '', label: '—' }, ...others.map((r) => ({ value: r, label: r }))]}
    />
    <${Field} as="textarea" label=${t('reassign.reason')} name="reason" required value=${form.values.reason} onInput=${form.set('reason')} error=${form.errors.reason} />
    <div class="actions">
      <button type="submit" disabled=${form.busy}>${t('reassign.save')}</button>
      <button type="button" class="secondary" onClick=${onCancel}>${t('app.cancel')}</button>
    </div>
  </form>`;
}
