// The console's client of the public /v1 API: the same routes every other
// client uses. The session lives in an HttpOnly cookie the browser sends by
// itself (scripts never see a token); writes carry the session's CSRF token
// in X-CSRF-Token. Errors are thrown as ApiError with the API's code,
// message and details, so forms can show each next to its field.

let csrf = '';
let onSignedOut = () => {};

/** An error answered by the API (`{"error": {code, message, details}}`). */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  /** The request field this error is about, if any. */
  get field() {
    const d = this.details;
    if (d.field) return String(d.field);
    // A malformed body names the JSON path of the field (".summary").
    if (d.path && d.path !== '.') return String(d.path).replace(/^\./, '').split(/[.[]/)[0];
    return null;
  }
}

/** Remembers the session's CSRF token (from sign-in or /sessions/current). */
export function setCsrf(token) {
  csrf = token || '';
}

/** Calls `f` when a request finds the session over (401). */
export function onUnauthorized(f) {
  onSignedOut = f;
}

/**
 * Sends one request: `api('GET', '/v1/deals', {query})` or
 * `api('POST', path, {body, ifMatch})`. Resolves to the parsed JSON (or
 * text), with `.etag` when the response carried one.
 */
export async function api(method, path, { body, query, ifMatch, accept, quiet401 } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, v);
    }
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const headers = { Accept: accept || 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (ifMatch !== undefined && ifMatch !== null) headers['If-Match'] = `"${ifMatch}"`;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'network', e.message || 'the server cannot be reached', {});
  }
  const type = res.headers.get('content-type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(res.status, err.code || `http_${res.status}`, err.message || res.statusText, err.details);
    if (res.status === 401 && !quiet401) onSignedOut(e);
    throw e;
  }
  if (data && typeof data === 'object') {
    Object.defineProperty(data, 'etag', { value: (res.headers.get('etag') || '').replace(/"/g, ''), enumerable: false });
  }
  return data;
}

/** Every item of a paged list, following next_cursor (at most `max`). */
export async function all(path, query = {}, max = 2000) {
  const items = [];
  let cursor;
  do {
    const page = await api('GET', path, { query: { ...query, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
