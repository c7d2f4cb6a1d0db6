// Components every page shares: labelled form fields that show the API's
// error for their field right beside them, banners for other errors,
// tier badges, loading and empty states, a dialog, a progress bar, and the
// `useAsync` / `useForm` hooks that tie them to the API.

import { html, useState, useEffect, useRef, useCallback } from './lib.js';
import { t } from './i18n.js';
import { ApiError } from './api.js';

let ids = 0;
/** A stable unique id for label/input pairs. */
export function useId(prefix = 'f') {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++ids}`;
  return ref.current;
}

/**
 * A labelled input. `error` (a string) is shown under it and linked with
 * aria-describedby; `as` is 'input' (default), 'textarea' or 'select'
 * (with `options: [{value, label}]`).
 */
export function Field({ label, name, value, onInput, error, as = 'input', type = 'text', options = [], required, hint, ...rest }) {
  const id = useId(name || 'f');
  const errId = `${id}-error`;
  const common = {
    id,
    name,
    value: value ?? '',
    required,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? errId : undefined,
    onInput: (e) => onInput && onInput(e.currentTarget.value),
    ...rest,
  };
  let control;
  if (as === 'textarea') control = html`<textarea ...${common} rows=${rest.rows || 3}></textarea>`;
  else if (as === 'select')
    control = html`<select ...${common} onChange=${common.onInput}>
      ${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
    </select>`;
  else control = html`<input ...${common} type=${type} />`;
  return html`<div class="field ${error ? 'has-error' : ''}">
    <label for=${id}>${label}${required ? html`<span class="req" aria-hidden="true"> *</span>` : null}</label>
    ${control}
    ${hint ? html`<div class="hint">${hint}</div>` : null}
    ${error ? html`<div class="field-error" id=${errId} role="alert">${error}</div>` : null}
  </div>`;
}

/** An error not tied to one field (or when no field shows it). */
export function ErrorBanner({ error, onRetry }) {
  if (!error) return null;
  const message = error instanceof ApiError ? error.message : String(error.message || error);
  return html`<div class="banner error" role="alert">
    <strong>${t('app.error')}:</strong> ${message}
    ${onRetry ? html` <button type="button" class="link" onClick=${onRetry}>${t('app.retry')}</button>` : null}
  </div>`;
}

/** A short notice (saved, moved). */
export function Notice({ children }) {
  return children ? html`<div class="banner ok" role="status">${children}</div>` : null;
}

/** A customer's tier as a badge. */
export function TierBadge({ tier }) {
  return html`<span class="tier tier-${tier}" title=${t('tier.title', { tier })}>${t(`tier.${tier}`)}</span>`;
}

export function Loading() {
  return html`<p class="muted" role="status">${t('app.loading')}</p>`;
}

export function Empty({ children }) {
  return html`<p class="muted empty">${children || t('app.nothing')}</p>`;
}

/**
 * A modal dialog (the native <dialog>: focus stays inside, Escape closes).
 * `onClose` is called when it closes.
 */
export function Dialog({ title, onClose, children }) {
  const ref = useRef(null);
  const id = useId('dlg');
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d && d.open && d.close();
  }, []);
  return html`<dialog ref=${ref} aria-labelledby=${id} onClose=${onClose} onCancel=${onClose}>
    <div class="dialog-head">
      <h2 id=${id}>${title}</h2>
      <button type="button" class="icon" aria-label=${t('app.close')} onClick=${onClose}>×</button>
    </div>
    ${children}
  </dialog>`;
}

/** A progress bar with its numbers (`done` of `total`). */
export function Progress({ done, total, label }) {
  const max = Math.max(Number(total) || 0, 1);
  return html`<div class="progress">
    <label>${label} <progress max=${max} value=${Math.min(Number(done) || 0, max)}></progress>
      <span class="muted">${done ?? 0} / ${total ?? '?'}</span></label>
  </div>`;
}

/**
 * Loads with `load()` on mount and whenever `deps` change; `reload()`
 * loads again, keeping what is shown until the new answer arrives.
 */
export function useAsync(load, deps = []) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const seq = useRef(0);
  const run = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ loading: false, data, error: null }),
      (error) => mine === seq.current && setState((s) => ({ loading: false, data: s.data, error })),
    );
  }, deps);
  useEffect(run, deps);
  return { ...state, reload: run };
}

/**
 * A form's values, submission and errors: `submit(send)` calls
 * `send(values)`; an ApiError naming a field (details.field or .path) is
 * shown at that field, any other error in the banner.
 */
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (v) => setValues((old) => ({ ...old, [name]: v }));
  const submit = async (send) => {
    setBusy(true);
    setErrors({});
    setError(null);
    try {
      return await send(values);
    } catch (e) {
      const field = e instanceof ApiError ? e.field : null;
      if (field && field in values) setErrors({ [field]: e.message });
      else setError(e);
      throw e;
    } finally {
      setBusy(false);
    }
  };
  return { values, set, setValues, errors, error, busy, submit };
}
