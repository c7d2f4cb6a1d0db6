// Simulate a bonus rule version before activating it: what a settlement of
// a real past period would pay with it, beside the rules in force, per rep
// and line by line (POST /v1/policies/{name}/versions/{v}/simulate, run as
// a job with its progress; nothing is written). Shown as a chart of each
// rep's total, active against candidate, and tables of the reps and of
// every line that changes.

import { html, useState } from '../lib.js';
import { t, addStrings, money, monthOf } from '../i18n.js';
import { useApp } from '../context.js';
import { Field } from '../components.js';
import { PairedBarChart } from '../chart.js';
import { useJob, JobProgress } from './jobs.js';
import { BranchPicker } from './branch-picker.js';

addStrings({
  en: {
    'simulate.title': 'Simulate version {version} on a past period',
    'simulate.period': 'Period',
    'simulate.from': 'Effective from (optional)',
    'simulate.fromHint': 'As activating it from that day would: earlier contracts keep the rules in force',
    'simulate.run': 'Simulate',
    'simulate.chart': 'Bonus per rep for {period}: active rules against version {version} (CNY)',
    'simulate.active': 'Active rules',
    'simulate.candidate': 'Version {version}',
    'simulate.totals': 'Total: {active} now, {candidate} with version {version}',
    'simulate.reps': 'Per rep',
    'simulate.rep': 'Rep',
    'simulate.difference': 'Difference',
    'simulate.changes': 'Every line that changes ({n})',
    'simulate.noChange': 'No line changes: version {version} pays exactly what the active rules pay.',
    'simulate.subject': 'For',
    'simulate.rule': 'Rule',
    'simulate.why': 'Explanation',
    'simulate.none': 'not paid',
  },
  zh: {
    'simulate.title': '在过去的期间模拟第 {version} 版',
    'simulate.period': '期间',
    'simulate.from': '生效日期（可选）',
    'simulate.fromHint': '如同从该日起激活：之前的合同仍按现行规则',
    'simulate.run': '模拟',
    'simulate.chart': '{period} 各销售代表奖金：现行规则与第 {version} 版对比（人民币）',
    'simulate.active': '现行规则',
    'simulate.candidate': '第 {version} 版',
    'simulate.totals': '合计：现行 {active}，第 {version} 版 {candidate}',
    'simulate.reps': '按销售代表',
    'simulate.rep': '销售代表',
    'simulate.difference': '差额',
    'simulate.changes': '全部变化的明细（{n}）',
    'simulate.noChange': '没有变化：第 {version} 版与现行规则支付完全相同。',
    'simulate.subject': '对象',
    'simulate.rule': '规则',
    'simulate.why': '说明',
    'simulate.none': '不支付',
  },
});

/** What a simulation found. */
export function SimulationView({ sim }) {
  const cny = (v) => money(v, 'CNY');
  const v = sim.version;
  return html`<div class="simulation">
    <p><strong>${t('simulate.totals', { active: cny(sim.active_total), candidate: cny(sim.candidate_total), version: v })}</strong></p>
    <h4>${t('simulate.chart', { period: sim.period, version: v })}</h4>
    <${PairedBarChart}
      title=${t('simulate.chart', { period: sim.period, version: v })}
      data=${sim.reps.map((r) => ({ label: r.rep, a: r.active, b: r.candidate }))}
      series=${[t('simulate.active'), t('simulate.candidate', { version: v })]}
      format=${cny}
    />
    <h3>${t('simulate.reps')}</h3>
    <table class="list">
      <thead>
        <tr>
          <th scope="col">${t('simulate.rep')}</th>
          <th scope="col" class="num">${t('simulate.active')}</th>
          <th scope="col" class="num">${t('simulate.candidate', { version: v })}</th>
          <th scope="col" class="num">${t('simulate.difference')}</th>
        </tr>
      </thead>
      <tbody>
        ${sim.reps.map(
          (r) => html`<tr key=${r.rep} class=${Number(r.difference) < 0 ? 'down' : Number(r.difference) > 0 ? 'up' : ''}>
            <th scope="row">${r.rep}</th>
            <td class="num">${cny(r.active)}</td>
            <td class="num">${cny(r.candidate)}</td>
            <td class="num">${cny(r.difference)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <h3>${t('simulate.changes', { n: sim.changes.length })}</h3>
    ${sim.changes.length === 0
      ? html`<p class="muted">${t('simulate.noChange', { version: v })}</p>`
      : html`<table class="list">
          <thead>
            <tr>
              <th scope="col">${t('simulate.rep')}</th>
              <th scope="col">${t('simulate.rule')}</th>
              <th scope="col">${t('simulate.subject')}</th>
              <th scope="col" class="num">${t('simulate.active')}</th>
              <th scope="col" class="num">${t('simulate.candidate', { version: v })}</th>
              <th scope="col">${t('simulate.why')}</th>
            </tr>
          </thead>
          <tbody>
            ${sim.changes.map((c, i) => {
              const l = c.candidate || c.active;
              return html`<tr key=${i}>
                <th scope="row">${l.rep}</th>
                <td>${l.rule}</td>
                <td>${t(`subject.${l.subject_kind}`)} ${l.subject}</td>
                <td class="num">${c.active ? cny(c.active.amount) : t('simulate.none')}</td>
                <td class="num">${c.candidate ? cny(c.candidate.amount) : t('simulate.none')}</td>
                <td class="explanation">${c.candidate ? c.candidate.explanation : c.active.explanation}</td>
              </tr>`;
            })}
          </tbody>
        </table>`}
  </div>`;
}

/** The form and its result for version `version` of policy `name`. */
export function SimulatePanel({ name, version, branch: initialBranch }) {
  const { me, tz } = useApp();
  const [branch, setBranch] = useState(initialBranch || me.branch || '');
  const [period, setPeriod] = useState(monthOf(Date.now(), tz));
  const [from, setFrom] = useState('');
  const [sim, setSim] = useState(null);
  const job = useJob(setSim);
  const run = (e) => {
    e.preventDefault();
    setSim(null);
    const body = { branch, period: period.trim() };
    if (from) body.effective_from = from;
    job.start(`/v1/policies/${encodeURIComponent(name)}/versions/${version}/simulate`, body);
  };
  const err = (f) => (job.error && job.error.field === f ? job.error.message : null);
  const other = job.error && !['period', 'effective_from', 'branch'].includes(job.error.field) ? job.error : null;
  return html`<section class="simulate" aria-label=${t('simulate.title', { version })}>
    <h3>${t('simulate.title', { version })}</h3>
    <form class="toolbar" novalidate onSubmit=${run}>
      ${me.role === 'admin' ? html`<${BranchPicker} value=${branch} onChange=${setBranch} />` : null}
      <${Field} label=${t('simulate.period')} name="period" value=${period} onInput=${setPeriod} error=${err('period')} hint=${t('settlements.periodHint')} />
      <${Field} label=${t('simulate.from')} name="effective_from" type="date" value=${from} onInput=${setFrom} error=${err('effective_from')} hint=${t('simulate.fromHint')} />
      <button type="submit" disabled=${!branch || job.busy}>${t('simulate.run')}</button>
    </form>
    <${JobProgress} job=${job.job} error=${other} />
    ${sim ? html`<${SimulationView} sim=${sim} />` : null}
  </section>`;
}
