// Team (a branch's manager): how key customers, revenue, open deals and
// overdue follow-ups spread across the reps (GET /v1/reports/team), as
// charts and a table with each rep's share, so an unfair spread shows at a
// glance (business rules §6). A re-tier runs as a job with its progress.

import { html, useState, useEffect } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, money, number, date, locale } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, ErrorBanner, Notice } from '../components.js';
import { BarChart, StackedBarChart } from '../chart.js';
import { useJob, JobProgress, runningJobs } from './jobs.js';
import { BranchPicker, useBranchParam } from './branch-picker.js';

addStrings({
  en: {
    'nav.team': 'Team',
    'team.title': 'Team',
    'team.window': 'Signed revenue from {from} to {to}',
    'team.tiers': 'Customers by tier per rep',
    'team.revenue': 'Signed revenue per rep (12 months, CNY)',
    'team.open': 'Open deals per rep',
    'team.overdue': 'Overdue follow-ups per rep',
    'team.rep': 'Rep',
    'team.a': 'A',
    'team.b': 'B',
    'team.c': 'C',
    'team.aShare': 'Share of A',
    'team.revenueCol': 'Revenue (CNY)',
    'team.revenueShare': 'Share of revenue',
    'team.openCol': 'Open deals',
    'team.overdueCol': 'Overdue',
    'team.total': 'Branch total',
    'team.retier': 'Re-tier now',
    'team.retiered': 'Re-tiered: {n} customers changed tier.',
    'team.charts': 'Charts',
    'team.table': 'Every rep',
  },
  zh: {
    'nav.team': '团队',
    'team.title': '团队',
    'team.window': '签约收入：{from} 至 {to}',
    'team.tiers': '各销售代表的客户等级分布',
    'team.revenue': '各销售代表的签约收入（近12个月，人民币）',
    'team.open': '各销售代表的进行中商机',
    'team.overdue': '各销售代表的逾期跟进',
    'team.rep': '销售代表',
    'team.a': 'A',
    'team.b': 'B',
    'team.c': 'C',
    'team.aShare': 'A 级占比',
    'team.revenueCol': '收入（人民币）',
    'team.revenueShare': '收入占比',
    'team.openCol': '进行中商机',
    'team.overdueCol': '逾期',
    'team.total': '分公司合计',
    'team.retier': '立即重新分级',
    'team.retiered': '重新分级完成：{n} 个客户等级变化。',
    'team.charts': '图表',
    'team.table': '全部销售代表',
  },
});

/** Money in CNY, short enough for a chart's label ("CN¥568K"). */
function compactCny(v) {
  return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'CNY', notation: 'compact', maximumFractionDigits: 1 }).format(Number(v) || 0);
}

function share(part, whole) {
  const w = Number(whole);
  return w > 0 ? `${Math.round((100 * Number(part)) / w)} %` : '—';
}

export function Team({ params }) {
  const { me, tz } = useApp();
  const [branch, setBranch] = useBranchParam(params);
  const { data, error, loading, reload } = useAsync(
    () => (branch ? api('GET', '/v1/reports/team', { query: { branch } }) : Promise.resolve(null)),
    [branch],
  );
  useLive(['tier_changed', 'owner_changed', 'transition', 'deal_created', 'record_added', 'task_closed'], reload);
  const [notice, setNotice] = useState('');
  const retier = useJob((result) => {
    setNotice(t('team.retiered', { n: result && result.changes ? result.changes.length : 0 }));
    reload();
  });
  // A re-tier started before this page was opened is found again.
  useEffect(() => {
    if (!branch) return;
    runningJobs(branch, 'retier').then((jobs) => jobs.length && retier.follow(jobs[jobs.length - 1]), () => null);
  }, [branch]);

  const reps = data ? data.reps : [];
  const tiers = reps.map((r) => ({ label: r.rep, parts: { A: r.a, B: r.b, C: r.c } }));
  const keys = ['A', 'B', 'C'].map((k) => ({ key: k, label: t(`tier.title`, { tier: k }) }));
  const cny = (v) => money(v, 'CNY');
  return html`<section class="team" aria-busy=${loading ? 'true' : 'false'}>
    <h1>${t('team.title')}</h1>
    <div class="toolbar">
      ${me.role === 'admin' ? html`<${BranchPicker} value=${branch} onChange=${setBranch} />` : null}
      <button type="button" class="secondary" disabled=${!branch || retier.busy}
        onClick=${() => retier.start(`/v1/branches/${encodeURIComponent(branch)}/retier`)}>${t('team.retier')}</button>
    </div>
    <${JobProgress} job=${retier.job} error=${retier.error} />
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${error} onRetry=${reload} />
    ${!data
      ? loading && branch
        ? html`<${Loading} />`
        : null
      : html`<p class="muted">${t('team.window', { from: date(data.window_from, tz), to: date(data.as_of, tz) })}</p>
          <h2>${t('team.charts')}</h2>
          <div class="charts">
            <div><h3>${t('team.tiers')}</h3><${StackedBarChart} title=${t('team.tiers')} data=${tiers} keys=${keys} format=${number} /></div>
            <div><h3>${t('team.revenue')}</h3><${BarChart} title=${t('team.revenue')} data=${reps.map((r) => ({ label: r.rep, value: r.signed_revenue }))} format=${compactCny} /></div>
            <div><h3>${t('team.open')}</h3><${BarChart} title=${t('team.open')} data=${reps.map((r) => ({ label: r.rep, value: r.open_deals }))} format=${number} /></div>
            <div><h3>${t('team.overdue')}</h3><${BarChart} title=${t('team.overdue')} data=${reps.map((r) => ({ label: r.rep, value: r.overdue_followups }))} format=${number} /></div>
          </div>
          <h2>${t('team.table')}</h2>
          <table class="list team-table">
            <thead>
              <tr>
                <th scope="col">${t('team.rep')}</th>
                <th scope="col" class="num">${t('team.a')}</th>
                <th scope="col" class="num">${t('team.b')}</th>
                <th scope="col" class="num">${t('team.c')}</th>
                <th scope="col" class="num">${t('team.aShare')}</th>
                <th scope="col" class="num">${t('team.revenueCol')}</th>
                <th scope="col" class="num">${t('team.revenueShare')}</th>
                <th scope="col" class="num">${t('team.openCol')}</th>
                <th scope="col" class="num">${t('team.overdueCol')}</th>
              </tr>
            </thead>
            <tbody>
              ${reps.map(
                (r) => html`<tr key=${r.rep}>
                  <th scope="row">${r.rep}</th>
                  <td class="num">${number(r.a)}</td>
                  <td class="num">${number(r.b)}</td>
                  <td class="num">${number(r.c)}</td>
                  <td class="num">${share(r.a, data.total.a)}</td>
                  <td class="num">${cny(r.signed_revenue)}</td>
                  <td class="num">${share(r.signed_revenue, data.total.signed_revenue)}</td>
                  <td class="num">${number(r.open_deals)}</td>
                  <td class="num">${number(r.overdue_followups)}</td>
                </tr>`,
              )}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">${t('team.total')}</th>
                <td class="num">${number(data.total.a)}</td>
                <td class="num">${number(data.total.b)}</td>
                <td class="num">${number(data.total.c)}</td>
                <td class="num"></td>
                <td class="num">${cny(data.total.signed_revenue)}</td>
                <td class="num"></td>
                <td class="num">${number(data.total.open_deals)}</td>
                <td class="num">${number(data.total.overdue_followups)}</td>
              </tr>
            </tfoot>
          </table>`}
  </section>`;
}
