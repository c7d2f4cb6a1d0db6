// The policy script editor: a plain textarea (keyboard and screen readers
// work as everywhere, Tab still moves on) beside a gutter of line numbers
// that scrolls with it. When the API refuses an upload with
// `details.line`/`details.column` (the compiler's or a failing example
// test's), the line is marked in the gutter and the message shows under
// the editor with a button that puts the cursor on it.

import { html, useRef, useEffect } from '../lib.js';
import { t, addStrings } from '../i18n.js';
import { useId } from '../components.js';

addStrings({
  en: {
    'editor.at': 'Line {line}, column {column}',
    'editor.atLine': 'Line {line}',
    'editor.goto': 'Go to line {line}',
    'editor.test': 'Example test {test} failed',
  },
  zh: {
    'editor.at': '第 {line} 行，第 {column} 列',
    'editor.atLine': '第 {line} 行',
    'editor.goto': '转到第 {line} 行',
    'editor.test': '示例测试 {test} 未通过',
  },
});

/** Where an API error points in the script: `{line, column, test, message}` or null. */
export function scriptError(e) {
  if (!e || e.code !== 'policy_invalid') return null;
  const d = e.details || {};
  return { line: d.line || null, column: d.column || null, test: d.test || null, message: e.message };
}

/** Offset of the start of 1-based `line` (and `column`) in `text`. */
function offsetOf(text, line, column) {
  let at = 0;
  for (let i = 1; i < line; i++) {
    const next = text.indexOf('\n', at);
    if (next < 0) return text.length;
    at = next + 1;
  }
  return Math.min(at + Math.max((column || 1) - 1, 0), text.length);
}

/**
 * `label`, `value`, `onInput(text)`, `error` (from `scriptError`), `rows`.
 */
export function ScriptEditor({ label, value, onInput, error, rows = 18, readOnly = false }) {
  const id = useId('script');
  const errId = `${id}-error`;
  const area = useRef(null);
  const gutter = useRef(null);
  const lines = value.split('\n').length;
  const syncScroll = () => {
    if (gutter.current && area.current) gutter.current.scrollTop = area.current.scrollTop;
  };
  useEffect(syncScroll, [value]);
  const goto = () => {
    const a = area.current;
    if (!a || !error || !error.line) return;
    const at = offsetOf(value, error.line, error.column);
    a.focus();
    a.setSelectionRange(at, at);
    // Bring the line into view: each line is one line-height tall.
    const lh = parseFloat(getComputedStyle(a).lineHeight) || 20;
    a.scrollTop = Math.max((error.line - 3) * lh, 0);
    syncScroll();
  };
  const numbers = [];
  for (let i = 1; i <= lines; i++) {
    numbers.push(html`<span class=${error && error.line === i ? 'gutter-line gutter-error' : 'gutter-line'}>${i}</span>`);
  }
  return html`<div class="field script-field ${error ? 'has-error' : ''}">
    <label for=${id}>${label}</label>
    <div class="editor">
      <pre class="gutter" ref=${gutter} aria-hidden="true">${numbers}</pre>
      <textarea
        id=${id}
        ref=${area}
        class="code"
        rows=${rows}
        spellcheck="false"
        autocapitalize="off"
        autocomplete="off"
        wrap="off"
        readOnly=${readOnly}
        value=${value}
        aria-invalid=${error ? 'true' : undefined}
        aria-describedby=${error ? errId : undefined}
        onInput=${(e) => onInput && onInput(e.currentTarget.value)}
        onScroll=${syncScroll}
      ></textarea>
    </div>
    ${error
      ? html`<div class="field-error script-error" id=${errId} role="alert">
          ${error.line
            ? html`<strong>${error.column ? t('editor.at', { line: error.line, column: error.column }) : t('editor.atLine', { line: error.line })}</strong>: `
            : null}
          ${error.test ? html`${t('editor.test', { test: error.test })}: ` : null}${error.message}
          ${error.line ? html` <button type="button" class="link" onClick=${goto}>${t('editor.goto', { line: error.line })}</button>` : null}
        </div>`
      : null}
  </div>`;
}
