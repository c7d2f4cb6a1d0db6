// The catalog (admins write, everyone reads): brands (a brand is new until
// a contract with it is signed: business rules §5.1) and FX rates (1 USD
// in each currency from a date on). A rate recorded wrong is corrected
// with a reason (PUT /v1/fx-rates/{currency}/{date}, If-Match its version);
// every version stays readable (GET …/{date}/history). Both lists page on
// the server.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, date, dateTime } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { Loading, Empty, ErrorBanner, Notice, Field, Dialog, useForm } from '../components.js';
import { usePaged, More } from './paged.js';

addStrings({
  en: {
    'nav.brands': 'Brands',
    'nav.fx': 'FX rates',
    'brands.title': 'Brands',
    'brands.id': 'Id',
    'brands.name': 'Name',
    'brands.introduced': 'Introduced',
    'brands.new': 'New brand',
    'brands.isNew': 'new (never sold)',
    'brands.sold': 'first sold {date}',
    'brands.add': 'Add a brand',
    'brands.create': 'Add brand',
    'brands.created': 'Brand {id} added.',
    'fx.title': 'FX rates',
    'fx.currency': 'Currency',
    'fx.date': 'From',
    'fx.perUsd': 'Units per 1 USD',
    'fx.filter': 'Only currency',
    'fx.show': 'Show',
    'fx.add': 'Add a rate',
    'fx.create': 'Add rate',
    'fx.created': '{currency} from {date}: {rate} per USD.',
    'fx.correct': 'Correct',
    'fx.correctLabel': 'Correct {currency} from {date}',
    'fx.correctTitle': 'Correct the {currency} rate from {date}',
    'fx.correctHint': 'Settlements convert at the corrected rate from now on; contracts already paid at the old rate are trued up by the next settlement.',
    'fx.reason': 'Reason',
    'fx.rightRate': 'The right rate (units per 1 USD)',
    'fx.save': 'Save correction',
    'fx.corrected': 'Corrected: {currency} from {date} is {rate} per USD.',
    'fx.history': 'History',
    'fx.historyLine': 'v{version}, {at}: {rate} by {by}: {reason}',
    'fx.recorded': 'recorded {at}',
    'fx.showHistory': 'Show the {n} versions',
  },
  zh: {
    'nav.brands': '品牌',
    'nav.fx': '汇率',
    'brands.title': '品牌',
    'brands.id': '编号',
    'brands.name': '名称',
    'brands.introduced': '引进日期',
    'brands.new': '新品牌',
    'brands.isNew': '新品牌（从未售出）',
    'brands.sold': '首次售出 {date}',
    'brands.add': '添加品牌',
    'brands.create': '添加',
    'brands.created': '品牌 {id} 已添加。',
    'fx.title': '汇率',
    'fx.currency': '币种',
    'fx.date': '起始日期',
    'fx.perUsd': '每 1 美元折合',
    'fx.filter': '只看币种',
    'fx.show': '查看',
    'fx.add': '添加汇率',
    'fx.create': '添加',
    'fx.created': '{currency} 自 {date} 起：每美元 {rate}。',
    'fx.correct': '更正',
    'fx.correctLabel': '更正 {currency} 自 {date} 起的汇率',
    'fx.correctTitle': '更正 {currency} 自 {date} 起的汇率',
    'fx.correctHint': '此后结算按更正后的汇率折算；已按旧汇率支付的合同将在下次结算中调整差额。',
    'fx.reason': '原因',
    'fx.rightRate': '正确的汇率（每 1 美元折合）',
    'fx.save': '保存更正',
    'fx.corrected': '已更正：{currency} 自 {date} 起每美元 {rate}。',
    'fx.history': '历史',
    'fx.historyLine': '第 {version} 版，{at}：{by} 改为 {rate}：{reason}',
    'fx.recorded': '录入于 {at}',
    'fx.showHistory': '查看全部 {n} 个版本',
  },
});

/** A date (`YYYY-MM-DD`) shown in the current language. */
function day(d) {
  return date(`${d}T00:00:00Z`, 'UTC');
}

export function Brands() {
  const { me } = useApp();
  const list = usePaged('/v1/brands', {}, []);
  useLive(['brand_created', 'transition'], list.reload);
  const [notice, setNotice] = useState('');
  const form = useForm({ id: '', name: '', introduced_at: new Date().toISOString().slice(0, 10) });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const b = await form.submit((v) => api('POST', '/v1/brands', { body: { id: v.id.trim(), name: v.name.trim(), introduced_at: v.introduced_at } }));
      setNotice(t('brands.created', { id: b.id }));
      form.setValues({ ...form.values, id: '', name: '' });
      list.reload();
    } catch (_) {
      // at the field
    }
  };
  return html`<section class="brands">
    <h1>${t('brands.title')}</h1>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${!list.data
      ? html`<${Loading} />`
      : list.rows.length === 0
        ? html`<${Empty} />`
        : html`<table class="list">
            <thead>
              <tr>
                <th scope="col">${t('brands.id')}</th>
                <th scope="col">${t('brands.name')}</th>
                <th scope="col">${t('brands.introduced')}</th>
                <th scope="col">${t('brands.new')}</th>
              </tr>
            </thead>
            <tbody>
              ${list.rows.map(
                (b) => html`<tr key=${b.id}>
                  <th scope="row">${b.id}</th>
                  <td>${b.name}</td>
                  <td>${day(b.introduced_at)}</td>
                  <td>${b.new ? html`<span class="badge new">${t('brands.isNew')}</span>` : t('brands.sold', { date: b.first_signed_at ? date(b.first_signed_at, 'UTC') : '' })}</td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    <${More} list=${list} />
    ${me.role === 'admin'
      ? html`<form class="card" novalidate onSubmit=${submit}>
          <h2>${t('brands.add')}</h2>
          <${ErrorBanner} error=${form.error} />
          <div class="row">
            <${Field} label=${t('brands.id')} name="id" required value=${form.values.id} onInput=${form.set('id')} error=${form.errors.id} hint="[a-z0-9-]{1,40}" />
            <${Field} label=${t('brands.name')} name="name" required value=${form.values.name} onInput=${form.set('name')} error=${form.errors.name} />
          </div>
          <${Field} label=${t('brands.introduced')} name="introduced_at" type="date" required value=${form.values.introduced_at} onInput=${form.set('introduced_at')} error=${form.errors.introduced_at} />
          <div class="actions"><button type="submit" disabled=${form.busy}>${t('brands.create')}</button></div>
        </form>`
      : null}
  </section>`;
}

// Every version of a corrected rate, loaded when asked for.
function RateHistory({ rate, tz }) {
  const [versions, setVersions] = useState(null);
  const [error, setError] = useState(null);
  const show = () =>
    api('GET', `/v1/fx-rates/${encodeURIComponent(rate.currency)}/${rate.date}/history`).then(
      (page) => setVersions(page.items),
      setError,
    );
  if (!versions) {
    return html`<div>
      <button type="button" class="link" onClick=${show}>${t('fx.showHistory', { n: rate.version })}</button>
      <${ErrorBanner} error=${error} />
    </div>`;
  }
  return versions.map(
    (v) => html`<div key=${v.version}>${t('fx.historyLine', {
      version: v.version,
      at: dateTime(v.recorded_at, tz),
      rate: v.per_usd,
      by: v.recorded_by || '—',
      reason: v.reason || '—',
    })}</div>`,
  );
}

function CorrectRate({ rate, onDone, onClose }) {
  const form = useForm({ per_usd: rate.per_usd, reason: '' });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const r = await form.submit((v) =>
        api('PUT', `/v1/fx-rates/${encodeURIComponent(rate.currency)}/${rate.date}`, {
          body: { per_usd: v.per_usd.trim(), reason: v.reason },
          ifMatch: rate.version,
        }),
      );
      onDone(r);
    } catch (_) {
      // at the field
    }
  };
  return html`<${Dialog} title=${t('fx.correctTitle', { currency: rate.currency, date: day(rate.date) })} onClose=${onClose}>
    <form novalidate onSubmit=${submit}>
      <p class="muted">${t('fx.correctHint')}</p>
      <${ErrorBanner} error=${form.error} />
      <${Field} label=${t('fx.rightRate')} name="per_usd" inputmode="decimal" required value=${form.values.per_usd} onInput=${form.set('per_usd')} error=${form.errors.per_usd} />
      <${Field} as="textarea" label=${t('fx.reason')} name="reason" required value=${form.values.reason} onInput=${form.set('reason')} error=${form.errors.reason} />
      <div class="actions">
        <button type="submit" disabled=${form.busy}>${t('fx.save')}</button>
        <button type="button" class="secondary" onClick=${onClose}>${t('app.cancel')}</button>
      </div>
    </form>
  <//>`;
}

export function FxRates({ params }) {
  const { me, tz } = useApp();
  const [filter, setFilter] = useState(params.currency || '');
  const [currency, setCurrency] = useState(filter);
  const list = usePaged('/v1/fx-rates', { currency: currency || undefined }, [currency]);
  useLive(['fx_rate_added', 'fx_rate_corrected'], list.reload);
  const [notice, setNotice] = useState('');
  const [correcting, setCorrecting] = useState(null);
  const form = useForm({ currency: 'CNY', date: new Date().toISOString().slice(0, 10), per_usd: '' });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const r = await form.submit((v) =>
        api('POST', '/v1/fx-rates', { body: { currency: v.currency.trim().toUpperCase(), date: v.date, per_usd: v.per_usd.trim() } }),
      );
      setNotice(t('fx.created', { currency: r.currency, date: day(r.date), rate: r.per_usd }));
      form.setValues({ ...form.values, per_usd: '' });
      list.reload();
    } catch (_) {
      // at the field
    }
  };
  return html`<section class="fx">
    <h1>${t('fx.title')}</h1>
    <form
      class="toolbar"
      role="search"
      onSubmit=${(e) => {
        e.preventDefault();
        setCurrency(filter.trim().toUpperCase());
      }}
    >
      <${Field} label=${t('fx.filter')} name="currency-filter" value=${filter} onInput=${setFilter} />
      <button type="submit">${t('fx.show')}</button>
    </form>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${!list.data
      ? html`<${Loading} />`
      : list.rows.length === 0
        ? html`<${Empty} />`
        : html`<table class="list">
            <thead>
              <tr>
                <th scope="col">${t('fx.currency')}</th>
                <th scope="col">${t('fx.date')}</th>
                <th scope="col" class="num">${t('fx.perUsd')}</th>
                <th scope="col">${t('fx.history')}</th>
                ${me.role === 'admin' ? html`<th scope="col"><span class="sr-only">${t('customers.actions')}</span></th>` : null}
              </tr>
            </thead>
            <tbody>
              ${list.rows.map(
                (r) => html`<tr key=${`${r.currency}-${r.date}`}>
                  <th scope="row">${r.currency}</th>
                  <td>${day(r.date)}</td>
                  <td class="num">${r.per_usd}</td>
                  <td class="explanation">
                    <div>${t('fx.recorded', { at: dateTime(r.recorded_at, tz) })}</div>
                    ${r.version > 1 ? html`<${RateHistory} rate=${r} tz=${tz} />` : null}
                  </td>
                  ${me.role === 'admin'
                    ? html`<td><button type="button" class="secondary" onClick=${() => setCorrecting(r)} aria-label=${t('fx.correctLabel', { currency: r.currency, date: day(r.date) })}>${t('fx.correct')}</button></td>`
                    : null}
                </tr>`,
              )}
            </tbody>
          </table>`}
    <${More} list=${list} />
    ${me.role === 'admin'
      ? html`<form class="card" novalidate onSubmit=${submit}>
          <h2>${t('fx.add')}</h2>
          <${ErrorBanner} error=${form.error} />
          <div class="row">
            <${Field} label=${t('fx.currency')} name="currency" required value=${form.values.currency} onInput=${form.set('currency')} error=${form.errors.currency} hint="ISO 4217" />
            <${Field} label=${t('fx.date')} name="date" type="date" required value=${form.values.date} onInput=${form.set('date')} error=${form.errors.date} />
          </div>
          <${Field} label=${t('fx.perUsd')} name="per_usd" inputmode="decimal" required value=${form.values.per_usd} onInput=${form.set('per_usd')} error=${form.errors.per_usd} />
          <div class="actions"><button type="submit" disabled=${form.busy}>${t('fx.create')}</button></div>
        </form>`
      : null}
    ${correcting
      ? html`<${CorrectRate}
          rate=${correcting}
          onClose=${() => setCorrecting(null)}
          onDone=${(r) => {
            setCorrecting(null);
            setNotice(t('fx.corrected', { currency: r.currency, date: day(r.date), rate: r.per_usd }));
            list.reload();
          }}
        />`
      : null}
  </section>`;
}
