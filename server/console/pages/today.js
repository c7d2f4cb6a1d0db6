// Today (a rep's day): customers due and overdue for a visit under the
// branch's cadence, and open follow-up tasks, most urgent first, from
// GET /v1/followups. One tap opens the communication record form; saving
// it clears the item (a record moves the customer's last contact; a task's
// record also completes the task). Updates live when someone else logs a
// record, closes a task or a re-tier changes a cadence.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, date } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Notice, Dialog, TierBadge } from '../components.js';
import { RecordForm } from './record-form.js';

addStrings({
  en: {
    'today.title': 'Today',
    'today.summary': '{overdue} overdue, {due} due, {tasks} open tasks',
    'today.overdue': 'Overdue since {date}',
    'today.due': 'Due since {date}',
    'today.task': 'Task due {date}',
    'today.lastContact': 'Last contact {date}',
    'today.neverContacted': 'Never contacted',
    'today.log': 'Log a record',
    'today.saved': 'Saved: {customer} is done for today.',
    'today.truncated': 'Only the most urgent items are shown.',
    'today.done': 'Nothing is due. Good work.',
  },
  zh: {
    'today.title': '今日待办',
    'today.summary': '逾期 {overdue} 个，到期 {due} 个，待办任务 {tasks} 个',
    'today.overdue': '自 {date} 起逾期',
    'today.due': '自 {date} 起到期',
    'today.task': '任务截止 {date}',
    'today.lastContact': '上次联系 {date}',
    'today.neverContacted': '从未联系',
    'today.log': '填写沟通记录',
    'today.saved': '已保存：今天的 {customer} 已完成。',
    'today.truncated': '仅显示最紧急的事项。',
    'today.done': '今天没有到期事项。',
  },
});

/** One list of items, most urgent first: overdue customers, then due ones and tasks by date. */
function items(followups, names) {
  const out = [];
  for (const c of followups.customers) {
    out.push({
      key: `c-${c.customer_id}`,
      kind: c.status === 'overdue' ? 'overdue' : 'due',
      customer: { id: c.customer_id, name: c.name },
      tier: c.tier,
      when: c.status === 'overdue' ? c.overdue_at : c.due_at,
      last: c.last_contact_at,
    });
  }
  for (const task of followups.tasks) {
    out.push({
      key: `t-${task.id}`,
      kind: 'task',
      task,
      customer: { id: task.customer_id, name: names[task.customer_id] || task.customer_id },
      when: task.due_at,
    });
  }
  const rank = { overdue: 0, due: 1, task: 1 };
  out.sort((a, b) => rank[a.kind] - rank[b.kind] || String(a.when).localeCompare(String(b.when)));
  return out;
}

export function Today() {
  const { me, tz } = useApp();
  const [open, setOpen] = useState(null);
  const [notice, setNotice] = useState('');
  const { data, error, loading, reload } = useAsync(async () => {
    const followups = await api('GET', '/v1/followups', { query: { branch: me.branch, owner: me.role === 'rep' ? me.user : undefined } });
    // Tasks name their customer by id: read the names once.
    const names = {};
    for (const c of followups.customers) names[c.customer_id] = c.name;
    const unknown = [...new Set(followups.tasks.map((x) => x.customer_id))].filter((id) => !names[id]);
    await Promise.all(
      unknown.map((id) =>
        api('GET', `/v1/customers/${encodeURIComponent(id)}`).then(
          (c) => (names[id] = c.name),
          () => null,
        ),
      ),
    );
    return { followups, names };
  }, []);
  useLive(['record_added', 'task_created', 'task_closed', 'tier_changed', 'customer_created', 'owner_changed', 'policy_activated'], reload);

  const saved = async (item) => {
    if (item.task) {
      try {
        await api('POST', `/v1/tasks/${encodeURIComponent(item.task.id)}/complete`, {
          body: { note: t('today.log') },
          ifMatch: item.task.version,
        });
      } catch (_) {
        // Someone closed it meanwhile: the reload shows where it stands.
      }
    }
    setOpen(null);
    setNotice(t('today.saved', { customer: item.customer.name }));
    reload();
  };

  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  const list = items(data.followups, data.names);
  const count = (k) => list.filter((i) => i.kind === k).length;
  return html`<section class="today" aria-busy=${loading ? 'true' : 'false'}>
    <h1>${t('today.title')}</h1>
    <p class="muted">${t('today.summary', { overdue: count('overdue'), due: count('due'), tasks: count('task') })}</p>
    <${ErrorBanner} error=${error} onRetry=${reload} />
    <${Notice}>${notice}<//>
    ${data.followups.truncated ? html`<p class="muted">${t('today.truncated')}</p>` : null}
    ${list.length === 0
      ? html`<${Empty}>${t('today.done')}<//>`
      : html`<ul class="items">
          ${list.map(
            (item) => html`<li class="item item-${item.kind}" key=${item.key}>
              <div class="item-main">
                <div class="item-title">
                  ${item.tier ? html`<${TierBadge} tier=${item.tier} />` : null}
                  <strong>${item.customer.name}</strong>
                </div>
                ${item.task ? html`<div>${item.task.title}</div>` : null}
                <div class="muted">
                  ${item.kind === 'task'
                    ? t('today.task', { date: date(item.when, tz) })
                    : t(item.kind === 'overdue' ? 'today.overdue' : 'today.due', { date: date(item.when, tz) })}
                  ${item.kind !== 'task'
                    ? html` · ${item.last ? t('today.lastContact', { date: date(item.last, tz) }) : t('today.neverContacted')}`
                    : null}
                </div>
              </div>
              <button type="button" onClick=${() => setOpen(item)} aria-label=${`${t('today.log')}: ${item.customer.name}`}>${t('today.log')}</button>
            </li>`,
          )}
        </ul>`}
    ${open
      ? html`<${Dialog} title=${t('record.title', { customer: open.customer.name })} onClose=${() => setOpen(null)}>
          <${RecordForm} customer=${open.customer} onSaved=${() => saved(open)} onCancel=${() => setOpen(null)} />
        <//>`
      : null}
  </section>`;
}
