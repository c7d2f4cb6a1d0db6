// My statement: a rep's bonus lines for a period (GET /v1/statements), with
// each line's rule, subject, amount and explanation, and totals by status
// (draft, approved, paid). Periods are the branch's calendar: a month
// (2026-03), a quarter (2026-Q1), a half-year (2026-H1) or a year.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, money, monthOf } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Field } from '../components.js';

addStrings({
  en: {
    'statement.title': 'My statement',
    'statement.period': 'Period',
    'statement.periodHint': 'A month (2026-03), quarter (2026-Q1), half-year (2026-H1) or year (2026)',
    'statement.show': 'Show',
    'statement.rule': 'Rule',
    'statement.subject': 'For',
    'statement.amount': 'Amount',
    'statement.status': 'Status',
    'statement.why': 'Why',
    'statement.total': 'Total {status}',
    'statement.none': 'No bonus lines in this period yet.',
    'status.draft': 'draft',
    'status.approved': 'approved',
    'status.paid': 'paid',
  },
  zh: {
    'statement.title': '我的奖金明细',
    'statement.period': '期间',
    'statement.periodHint': '月（2026-03）、季度（2026-Q1）、半年（2026-H1）或年（2026）',
    'statement.show': '查看',
    'statement.rule': '规则',
    'statement.subject': '对象',
    'statement.amount': '金额',
    'statement.status': '状态',
    'statement.why': '说明',
    'statement.total': '{status}合计',
    'statement.none': '本期间暂无奖金记录。',
    'status.draft': '草稿',
    'status.approved': '已批准',
    'status.paid': '已发放',
  },
});

export function Statement({ params }) {
  const { me, tz } = useApp();
  const [period, setPeriod] = useState(params.period || monthOf(Date.now(), tz));
  const [shown, setShown] = useState(period);
  const rep = params.rep || me.user;
  const { data, error, loading, reload } = useAsync(
    () => api('GET', '/v1/statements', { query: { branch: me.branch, rep, period: shown } }),
    [shown, rep],
  );
  useLive(['award_announced', 'settlement_drafted', 'settlement_approved', 'settlement_paid'], reload);
  return html`<section class="statement">
    <h1>${t('statement.title')}</h1>
    <form
      class="toolbar"
      onSubmit=${(e) => {
        e.preventDefault();
        setShown(period.trim());
      }}
    >
      <${Field}
        label=${t('statement.period')}
        name="period"
        value=${period}
        onInput=${setPeriod}
        hint=${t('statement.periodHint')}
        error=${error && error.field === 'period' ? error.message : null}
      />
      <button type="submit">${t('statement.show')}</button>
    </form>
    ${error && error.field !== 'period' ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : null}
    ${!data && loading
      ? html`<${Loading} />`
      : !data
        ? null
        : data.lines.length === 0
          ? html`<${Empty}>${t('statement.none')}<//>`
          : html`<table class="list">
              <thead>
                <tr>
                  <th scope="col">${t('statement.rule')}</th>
                  <th scope="col">${t('statement.subject')}</th>
                  <th scope="col" class="num">${t('statement.amount')}</th>
                  <th scope="col">${t('statement.status')}</th>
                  <th scope="col">${t('statement.why')}</th>
                </tr>
              </thead>
              <tbody>
                ${data.lines.map(
                  (l) => html`<tr>
                    <td>${l.line.rule}</td>
                    <td>${l.line.subject}</td>
                    <td class="num">${money(l.line.amount, l.line.currency)}</td>
                    <td>${t(`status.${l.status}`)}</td>
                    <td class="explanation">${l.line.explanation}</td>
                  </tr>`,
                )}
              </tbody>
              <tfoot>
                ${Object.entries(data.totals).map(
                  ([status, amount]) => html`<tr>
                    <th scope="row" colspan="2">${t('statement.total', { status: t(`status.${status}`) })}</th>
                    <td class="num">${money(amount, data.currency)}</td>
                    <td colspan="2"></td>
                  </tr>`,
                )}
              </tfoot>
            </table>`}
  </section>`;
}
