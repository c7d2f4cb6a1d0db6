// Referrals (a branch's manager): what the customers each customer
// referred have signed (GET /v1/reports/referrals), over an optional range
// of signing days in the branch's calendar: a chart of the referrers and a
// table with every referred customer (business rules §4: a well-kept
// customer brings new business).

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, money, number } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Field } from '../components.js';
import { BarChart } from '../chart.js';
import { BranchPicker, useBranchParam } from './branch-picker.js';

addStrings({
  en: {
    'nav.referrals': 'Referrals',
    'referrals.title': 'Referrals',
    'referrals.from': 'Signed from',
    'referrals.to': 'Signed until',
    'referrals.show': 'Show',
    'referrals.chart': 'Signed revenue of referred customers, by who referred them (CNY)',
    'referrals.referrer': 'Referred by',
    'referrals.customer': 'Customer',
    'referrals.deals': 'Contracts',
    'referrals.revenue': 'Revenue (CNY)',
    'referrals.none': 'No referred customer signed in this range.',
    'referrals.unconverted': '{n} contracts are left out: no FX rate was in force on their signing day.',
  },
  zh: {
    'nav.referrals': '转介绍',
    'referrals.title': '转介绍',
    'referrals.from': '签约起始日',
    'referrals.to': '签约截止日',
    'referrals.show': '查看',
    'referrals.chart': '被转介绍客户的签约收入（按介绍人，人民币）',
    'referrals.referrer': '介绍人',
    'referrals.customer': '客户',
    'referrals.deals': '合同数',
    'referrals.revenue': '收入（人民币）',
    'referrals.none': '该期间没有被转介绍客户签约。',
    'referrals.unconverted': '{n} 份合同未计入：签约当日没有生效的汇率。',
  },
});

export function Referrals({ params }) {
  const { me } = useApp();
  const [branch, setBranch] = useBranchParam(params);
  const [range, setRange] = useState({ from: params.from || '', to: params.to || '' });
  const [shown, setShown] = useState(range);
  const { data, error, loading, reload } = useAsync(
    () => (branch ? api('GET', '/v1/reports/referrals', { query: { branch, ...shown } }) : Promise.resolve(null)),
    [branch, shown.from, shown.to],
  );
  useLive(['transition', 'deal_cancelled', 'customer_changed'], reload);
  const fieldError = (f) => (error && error.field === f ? error.message : null);
  const cny = (v) => money(v, 'CNY');
  return html`<section class="referrals" aria-busy=${loading ? 'true' : 'false'}>
    <h1>${t('referrals.title')}</h1>
    <form
      class="toolbar"
      onSubmit=${(e) => {
        e.preventDefault();
        setShown({ ...range });
      }}
    >
      ${me.role === 'admin' ? html`<${BranchPicker} value=${branch} onChange=${setBranch} />` : null}
      <${Field} label=${t('referrals.from')} name="from" type="date" value=${range.from} onInput=${(v) => setRange({ ...range, from: v })} error=${fieldError('from')} />
      <${Field} label=${t('referrals.to')} name="to" type="date" value=${range.to} onInput=${(v) => setRange({ ...range, to: v })} error=${fieldError('to')} />
      <button type="submit">${t('referrals.show')}</button>
    </form>
    ${error && !fieldError('from') && !fieldError('to') ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : null}
    ${!data
      ? loading && branch
        ? html`<${Loading} />`
        : null
      : data.referrers.length === 0
        ? html`<${Empty}>${t('referrals.none')}<//>`
        : html`<${BarChart} title=${t('referrals.chart')} data=${data.referrers.map((r) => ({ label: r.name, value: r.revenue }))} format=${cny} />
            <table class="list">
              <thead>
                <tr>
                  <th scope="col">${t('referrals.referrer')}</th>
                  <th scope="col">${t('referrals.customer')}</th>
                  <th scope="col" class="num">${t('referrals.deals')}</th>
                  <th scope="col" class="num">${t('referrals.revenue')}</th>
                </tr>
              </thead>
              ${data.referrers.map(
                (r) => html`<tbody key=${r.customer_id}>
                  <tr class="group">
                    <th scope="rowgroup">${r.name}</th>
                    <td></td>
                    <td class="num">${number(r.deals)}</td>
                    <td class="num"><strong>${cny(r.revenue)}</strong></td>
                  </tr>
                  ${r.referred.map(
                    (c) => html`<tr key=${c.customer_id}>
                      <td></td>
                      <th scope="row">${c.name}</th>
                      <td class="num">${number(c.deals)}</td>
                      <td class="num">${cny(c.revenue)}</td>
                    </tr>`,
                  )}
                </tbody>`,
              )}
            </table>`}
    ${data && data.unconverted ? html`<p class="muted">${t('referrals.unconverted', { n: data.unconverted })}</p>` : null}
  </section>`;
}
