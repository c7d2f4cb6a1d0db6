// A list paged on the server (`?limit=&cursor=`, `{items, next_cursor}`):
// the first page on load (and whenever `deps` change or `reload()` is
// called), then one more page per "Load more", so a long list never loads
// whole.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { useAsync } from '../components.js';

/** Page size of the manager's and admin pages' lists. */
export const PAGE = 50;

/**
 * `{rows, data, error, loading, reload, more, next}`: `rows` are every
 * item loaded so far, `more` whether the server has more, `next()` loads
 * them.
 */
export function usePaged(path, query, deps) {
  const [extra, setExtra] = useState({ items: [], cursor: null, error: null });
  const state = useAsync(async () => {
    const first = await api('GET', path, { query: { ...query, limit: PAGE } });
    setExtra({ items: [], cursor: first.next_cursor, error: null });
    return first;
  }, deps);
  const next = async () => {
    try {
      const page = await api('GET', path, { query: { ...query, limit: PAGE, cursor: extra.cursor } });
      setExtra((m) => ({ items: [...m.items, ...page.items], cursor: page.next_cursor, error: null }));
    } catch (e) {
      setExtra((m) => ({ ...m, error: e }));
    }
  };
  return {
    ...state,
    error: state.error || extra.error,
    rows: state.data ? [...state.data.items, ...extra.items] : [],
    more: !!extra.cursor,
    next,
  };
}

/** The "Load more" button of a paged list (nothing when all is loaded). */
export function More({ list }) {
  return list.more ? html`<button type="button" class="secondary" onClick=${list.next}>${t('app.more')}</button>` : null;
}
