// Hash routing: the page is `#/<path>?<params>` (a reload or a shared link
// opens the same page; the server serves one HTML page for all of them).

import { useState, useEffect } from './lib.js';

/** The route in the hash: `{path, params}`. */
export function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { path, params: Object.fromEntries(new URLSearchParams(query)) };
}

/** Goes to `#/path?params`. */
export function go(path, params) {
  const q = params ? new URLSearchParams(params).toString() : '';
  location.hash = `#/${path}${q ? `?${q}` : ''}`;
}

/** A link's href for `path` and `params`. */
export function href(path, params) {
  const q = params ? new URLSearchParams(params).toString() : '';
  return `#/${path}${q ? `?${q}` : ''}`;
}

/** The current route, re-rendering on change. */
export function useRoute() {
  const [r, setR] = useState(route());
  useEffect(() => {
    const f = () => setR(route());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}
