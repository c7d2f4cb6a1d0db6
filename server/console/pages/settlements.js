// Settlements (a branch's manager): draft a period (a job with its progress
// bar: a quarter of a big branch takes a while), read every line with its
// explanation (the inputs, the tier hit, the thresholds) and the policy
// version that computed it, see the bonus per rep as a chart, approve, pay,
// and download the settlement or one rep's statement as CSV (the API's own
// CSV, a plain same-origin link). Lists page on the server; the page
// updates live when a settlement changes elsewhere.

import { html, useState, useEffect } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, money, dateTime, monthOf, number } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Notice, Field } from '../components.js';
import { BarChart } from '../chart.js';
import { go } from '../router.js';
import { useJob, JobProgress, runningJobs } from './jobs.js';
import { BranchPicker, useBranchParam } from './branch-picker.js';
import { usePaged, More } from './paged.js';

addStrings({
  en: {
    'nav.settlements': 'Settlements',
    'settlements.title': 'Settlements',
    'settlements.period': 'Period',
    'settlements.periodHint': 'A month (2026-03), quarter (2026-Q1), half-year (2026-H1) or year (2026), in the branch’s calendar',
    'settlements.draft': 'Draft this period',
    'settlements.drafted': 'Drafted {period}: {n} lines, {total}.',
    'settlements.list': 'Settlements of the branch',
    'settlements.status': 'Status',
    'settlements.total': 'Total',
    'settlements.lines': 'Lines',
    'settlements.created': 'Drafted',
    'settlements.open': 'Open {period}',
    'settlements.none': 'No settlement yet: draft a period.',
    'settlements.heading': 'Settlement {period} ({status})',
    'settlements.byRep': 'Bonus per rep for {period} (CNY)',
    'settlements.approve': 'Approve',
    'settlements.approveHint': 'Approving is the general manager’s confirmation: the awards are announced and the lines never change again.',
    'settlements.pay': 'Mark paid',
    'settlements.approved': 'Approved: the awards are announced.',
    'settlements.paid': 'Marked paid.',
    'settlements.csv': 'Download the settlement (CSV)',
    'settlements.statement': 'Statement of {rep} (CSV)',
    'settlements.rep': 'Rep',
    'settlements.rule': 'Rule',
    'settlements.subject': 'For',
    'settlements.amount': 'Amount',
    'settlements.why': 'Explanation (inputs, tier, thresholds)',
    'settlements.policy': 'Policy',
    'settlements.flag': 'Flag: {flag}',
    'settlements.trueUp': 'True-up of {period}: paid {paid}, due now {now}',
    'settlements.alreadySettled': '{n} subjects were already paid the same by an approved settlement.',
    'settlements.filterRep': 'Show lines of',
    'settlements.everyone': 'Every rep',
    'settlements.more': 'Show {n} more lines',
    'settlements.close': 'Back to the list',
    'subject.deal': 'contract',
    'subject.customer': 'customer',
    'subject.rep': 'rep',
  },
  zh: {
    'nav.settlements': '奖金结算',
    'settlements.title': '奖金结算',
    'settlements.period': '期间',
    'settlements.periodHint': '月（2026-03）、季度（2026-Q1）、半年（2026-H1）或年（2026），按分公司日历',
    'settlements.draft': '生成本期草稿',
    'settlements.drafted': '已生成 {period}：{n} 行，合计 {total}。',
    'settlements.list': '分公司的结算',
    'settlements.status': '状态',
    'settlements.total': '合计',
    'settlements.lines': '行数',
    'settlements.created': '生成时间',
    'settlements.open': '打开 {period}',
    'settlements.none': '还没有结算：请先生成一个期间的草稿。',
    'settlements.heading': '{period} 结算（{status}）',
    'settlements.byRep': '{period} 各销售代表奖金（人民币）',
    'settlements.approve': '批准',
    'settlements.approveHint': '批准即总经理确认：公布奖励，此后各行不再变化。',
    'settlements.pay': '标记为已发放',
    'settlements.approved': '已批准：奖励已公布。',
    'settlements.paid': '已标记为已发放。',
    'settlements.csv': '下载结算（CSV）',
    'settlements.statement': '{rep} 的明细（CSV）',
    'settlements.rep': '销售代表',
    'settlements.rule': '规则',
    'settlements.subject': '对象',
    'settlements.amount': '金额',
    'settlements.why': '说明（输入、档位、门槛）',
    'settlements.policy': '策略',
    'settlements.flag': '提示：{flag}',
    'settlements.trueUp': '{period} 的差额调整：已付 {paid}，现应付 {now}',
    'settlements.alreadySettled': '{n} 个对象已由已批准的结算按相同金额支付。',
    'settlements.filterRep': '显示以下人员的明细',
    'settlements.everyone': '全部销售代表',
    'settlements.more': '再显示 {n} 行',
    'settlements.close': '返回列表',
    'subject.deal': '合同',
    'subject.customer': '客户',
    'subject.rep': '销售代表',
  },
});

const LINES = 200;

function SettlementList({ branch, onOpen, tz }) {
  const list = usePaged('/v1/settlements', { branch }, [branch]);
  useLive(['settlement_drafted', 'settlement_approved', 'settlement_paid'], list.reload);
  const { data, error, loading, reload } = list;
  const rows = list.rows;
  return html`<section aria-busy=${loading ? 'true' : 'false'}>
    <h2>${t('settlements.list')}</h2>
    <${ErrorBanner} error=${error} onRetry=${reload} />
    ${!data && loading
      ? html`<${Loading} />`
      : rows.length === 0
        ? html`<${Empty}>${t('settlements.none')}<//>`
        : html`<table class="list">
            <thead>
              <tr>
                <th scope="col">${t('settlements.period')}</th>
                <th scope="col">${t('settlements.status')}</th>
                <th scope="col" class="num">${t('settlements.lines')}</th>
                <th scope="col" class="num">${t('settlements.total')}</th>
                <th scope="col">${t('settlements.created')}</th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (s) => html`<tr key=${s.id}>
                  <th scope="row"><button type="button" class="link" onClick=${() => onOpen(s.id)} aria-label=${t('settlements.open', { period: s.period })}>${s.period}</button></th>
                  <td><span class="status status-${s.status}">${t(`status.${s.status}`)}</span></td>
                  <td class="num">${number(s.lines.length)}</td>
                  <td class="num">${money(s.total, s.currency)}</td>
                  <td>${dateTime(s.created_at, tz)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    <${More} list=${list} />
  </section>`;
}

function subjectText(l) {
  return `${t(`subject.${l.subject_kind}`)} ${l.subject} · ${l.subject_period}`;
}

function SettlementView({ id, onClose, tz }) {
  const { data: s, error, reload, loading } = useAsync(() => api('GET', `/v1/settlements/${encodeURIComponent(id)}`), [id]);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState(null);
  const [notice, setNotice] = useState('');
  const [rep, setRep] = useState('');
  const [limit, setLimit] = useState(LINES);
  useLive(['settlement_drafted', 'settlement_approved', 'settlement_paid'], (data) => {
    if (!data || !data.resource || data.resource.id === id) reload();
  });
  const act = (step, done) => async () => {
    setBusy(true);
    setActionError(null);
    try {
      await api('POST', `/v1/settlements/${encodeURIComponent(id)}/${step}`);
      setNotice(done);
      reload();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!s) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  const lines = rep ? s.lines.filter((l) => l.rep === rep) : s.lines;
  const q = (extra) => new URLSearchParams({ branch: s.branch, period: s.period, format: 'csv', ...extra }).toString();
  return html`<section class="settlement" aria-busy=${loading ? 'true' : 'false'}>
    <div class="actions">
      <button type="button" class="link" onClick=${onClose}>← ${t('settlements.close')}</button>
    </div>
    <h2>${t('settlements.heading', { period: s.period, status: t(`status.${s.status}`) })}</h2>
    <p><strong>${t('settlements.total')}: ${money(s.total, s.currency)}</strong> · ${t('settlements.lines')}: ${number(s.lines.length)}
      ${s.already_settled ? html` · <span class="muted">${t('settlements.alreadySettled', { n: number(s.already_settled) })}</span>` : null}</p>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${actionError} />
    <div class="actions">
      ${s.status === 'draft'
        ? html`<button type="button" disabled=${busy} onClick=${act('approve', t('settlements.approved'))}>${t('settlements.approve')}</button>
            <span class="muted">${t('settlements.approveHint')}</span>`
        : null}
      ${s.status === 'approved' ? html`<button type="button" disabled=${busy} onClick=${act('pay', t('settlements.paid'))}>${t('settlements.pay')}</button>` : null}
      <a class="button secondary" href=${`/v1/settlements/${encodeURIComponent(s.id)}?format=csv`} download>${t('settlements.csv')}</a>
    </div>
    ${s.totals.length
      ? html`<h3>${t('settlements.byRep', { period: s.period })}</h3>
        <${BarChart}
          title=${t('settlements.byRep', { period: s.period })}
          data=${s.totals.map((r) => ({ label: r.rep, value: r.total }))}
          format=${(v) => money(v, s.currency)}
        />
        <ul class="statements">
          ${s.totals.map(
            (r) => html`<li key=${r.rep}><a href=${`/v1/statements?${q({ rep: r.rep })}`} download>${t('settlements.statement', { rep: r.rep })}</a></li>`,
          )}
        </ul>`
      : null}
    <div class="toolbar">
      <${Field}
        as="select"
        label=${t('settlements.filterRep')}
        name="rep"
        value=${rep}
        onInput=${(v) => {
          setRep(v);
          setLimit(LINES);
        }}
        options=${[{ value: '', label: t('settlements.everyone') }, ...s.totals.map((r) => ({ value: r.rep, label: r.rep }))]}
      />
    </div>
    ${lines.length === 0
      ? html`<${Empty} />`
      : html`<table class="list settlement-lines">
          <thead>
            <tr>
              <th scope="col">${t('settlements.rep')}</th>
              <th scope="col">${t('settlements.rule')}</th>
              <th scope="col">${t('settlements.subject')}</th>
              <th scope="col" class="num">${t('settlements.amount')}</th>
              <th scope="col">${t('settlements.why')}</th>
              <th scope="col">${t('settlements.policy')}</th>
            </tr>
          </thead>
          <tbody>
            ${lines.slice(0, limit).map(
              (l, i) => html`<tr key=${i}>
                <th scope="row">${l.rep}</th>
                <td>${l.rule}</td>
                <td>${subjectText(l)}</td>
                <td class="num">${money(l.amount, l.currency)}</td>
                <td class="explanation">
                  ${l.explanation}
                  ${l.flag ? html`<div><strong>${t('settlements.flag', { flag: l.flag })}</strong></div>` : null}
                  ${l.adjusts
                    ? html`<div>${t('settlements.trueUp', { period: l.subject_period, paid: money(l.adjusts.paid, l.currency), now: money(l.adjusts.now, l.currency) })}</div>`
                    : null}
                </td>
                <td><code title=${`SHA-256 ${l.policy.sha256}`}>${l.policy.name} v${l.policy.version}</code></td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    ${lines.length > limit
      ? html`<button type="button" class="secondary" onClick=${() => setLimit(limit + LINES)}>${t('settlements.more', { n: Math.min(LINES, lines.length - limit) })}</button>`
      : null}
  </section>`;
}

export function Settlements({ params }) {
  const { me, tz } = useApp();
  const [branch, setBranch] = useBranchParam(params);
  const [period, setPeriod] = useState(params.period || monthOf(Date.now(), tz));
  const [notice, setNotice] = useState('');
  const open = (id) => go('settlements', { ...params, branch, id });
  const job = useJob((s) => {
    setNotice(t('settlements.drafted', { period: s.period, n: number(s.lines.length), total: money(s.total, s.currency) }));
    open(s.id);
  });
  // A draft started before this page was opened (or before a reload) is found again.
  useEffect(() => {
    if (!branch) return;
    runningJobs(branch, 'settlement').then((jobs) => jobs.length && job.follow(jobs[jobs.length - 1]), () => null);
  }, [branch]);
  const draft = (e) => {
    e.preventDefault();
    setNotice('');
    job.start('/v1/settlements', { branch, period: period.trim() });
  };
  const periodError = job.error && job.error.field === 'period' ? job.error.message : null;
  return html`<section class="settlements">
    <h1>${t('settlements.title')}</h1>
    <form class="toolbar" novalidate onSubmit=${draft}>
      ${me.role === 'admin' ? html`<${BranchPicker} value=${branch} onChange=${setBranch} />` : null}
      <${Field} label=${t('settlements.period')} name="period" value=${period} onInput=${setPeriod} hint=${t('settlements.periodHint')} error=${periodError} />
      <button type="submit" disabled=${!branch || job.busy}>${t('settlements.draft')}</button>
    </form>
    <${JobProgress} job=${job.job} error=${periodError ? null : job.error} />
    <${Notice}>${notice}<//>
    ${!branch
      ? null
      : params.id
        ? html`<${SettlementView} id=${params.id} tz=${tz} key=${params.id} onClose=${() => go('settlements', { branch })} />`
        : html`<${SettlementList} branch=${branch} tz=${tz} onOpen=${open} />`}
  </section>`;
}
