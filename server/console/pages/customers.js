// My customers: tier badges, last contact, search by name, paged on the
// server (GET /v1/customers?owner=&q=&cursor=), so a branch of 100,000
// customers opens as quickly as one of 100. A rep sees their own by
// default and may widen to the whole branch.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, date } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Field, TierBadge, Dialog } from '../components.js';
import { RecordForm } from './record-form.js';
import { ReassignForm } from './reassign.js';

addStrings({
  en: {
    'customers.title': 'My customers',
    'customers.titleAll': 'Customers',
    'customers.search': 'Search by name',
    'customers.searchButton': 'Search',
    'customers.mine': 'Only mine',
    'customers.name': 'Customer',
    'customers.tier': 'Tier',
    'customers.owner': 'Account manager',
    'customers.lastContact': 'Last contact',
    'customers.never': 'never',
    'customers.actions': 'Actions',
    'customers.none': 'No customer matches.',
  },
  zh: {
    'customers.title': '我的客户',
    'customers.titleAll': '客户',
    'customers.search': '按名称搜索',
    'customers.searchButton': '搜索',
    'customers.mine': '只看我的',
    'customers.name': '客户',
    'customers.tier': '等级',
    'customers.owner': '客户经理',
    'customers.lastContact': '上次联系',
    'customers.never': '从未',
    'customers.actions': '操作',
    'customers.none': '没有匹配的客户。',
  },
});

const PAGE = 50;

export function Customers() {
  const { me, tz } = useApp();
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [mine, setMine] = useState(me.role === 'rep');
  const [more, setMore] = useState({ items: [], cursor: null, error: null });
  const [open, setOpen] = useState(null);
  const [reassigning, setReassigning] = useState(null);
  const query = { branch: me.branch || undefined, owner: mine ? me.user : undefined, q: search || undefined, limit: PAGE };
  const { data, error, loading, reload } = useAsync(async () => {
    const page = await api('GET', '/v1/customers', { query });
    setMore({ items: [], cursor: page.next_cursor, error: null });
    return page;
  }, [search, mine]);
  useLive(['customer_created', 'customer_changed', 'tier_changed', 'owner_changed', 'record_added'], reload);

  const loadMore = async () => {
    try {
      const page = await api('GET', '/v1/customers', { query: { ...query, cursor: more.cursor } });
      setMore((m) => ({ items: [...m.items, ...page.items], cursor: page.next_cursor, error: null }));
    } catch (e) {
      setMore((m) => ({ ...m, error: e }));
    }
  };

  const rows = data ? [...data.items, ...more.items] : [];
  return html`<section class="customers">
    <h1>${mine ? t('customers.title') : t('customers.titleAll')}</h1>
    <form
      class="toolbar"
      role="search"
      onSubmit=${(e) => {
        e.preventDefault();
        setSearch(q.trim());
      }}
    >
      <${Field} label=${t('customers.search')} name="q" type="search" value=${q} onInput=${setQ} />
      <button type="submit">${t('customers.searchButton')}</button>
      <label class="check"><input type="checkbox" checked=${mine} onChange=${(e) => setMine(e.currentTarget.checked)} /> ${t('customers.mine')}</label>
    </form>
    <${ErrorBanner} error=${error || more.error} onRetry=${reload} />
    ${!data && loading
      ? html`<${Loading} />`
      : rows.length === 0
        ? html`<${Empty}>${t('customers.none')}<//>`
        : html`<table class="list" aria-busy=${loading ? 'true' : 'false'}>
            <thead>
              <tr>
                <th scope="col">${t('customers.name')}</th>
                <th scope="col">${t('customers.tier')}</th>
                <th scope="col">${t('customers.owner')}</th>
                <th scope="col">${t('customers.lastContact')}</th>
                <th scope="col"><span class="sr-only">${t('customers.actions')}</span></th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (c) => html`<tr key=${c.id}>
                  <th scope="row">${c.name}</th>
                  <td><${TierBadge} tier=${c.tier} /></td>
                  <td>${c.owner || '—'}</td>
                  <td>${c.last_contact_at ? date(c.last_contact_at, tz) : t('customers.never')}</td>
                  <td class="row-actions">
                    <button type="button" class="secondary" onClick=${() => setOpen(c)} aria-label=${`${t('today.log')}: ${c.name}`}>${t('today.log')}</button>
                    ${me.role !== 'rep'
                      ? html`<button type="button" class="secondary" onClick=${() => setReassigning(c)} aria-label=${`${t('reassign.button')}: ${c.name}`}>${t('reassign.button')}</button>`
                      : null}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    ${more.cursor ? html`<button type="button" class="secondary" onClick=${loadMore}>${t('app.more')}</button>` : null}
    ${reassigning
      ? html`<${Dialog} title=${t('reassign.title', { customer: reassigning.name })} onClose=${() => setReassigning(null)}>
          <${ReassignForm}
            customer=${reassigning}
            onSaved=${() => {
              setReassigning(null);
              reload();
            }}
            onCancel=${() => setReassigning(null)}
          />
        <//>`
      : null}
    ${open
      ? html`<${Dialog} title=${t('record.title', { customer: open.name })} onClose=${() => setOpen(null)}>
          <${RecordForm}
            customer=${open}
            onSaved=${() => {
              setOpen(null);
              reload();
            }}
            onCancel=${() => setOpen(null)}
          />
        <//>`
      : null}
  </section>`;
}
