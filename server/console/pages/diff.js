// A line diff of two policy versions' scripts (both read from
// GET /v1/policies/{name}/versions/{v}): the longest common subsequence of
// their lines, shown as a table of kept, removed and added lines with both
// line numbers, unchanged stretches folded to a few lines of context.

import { html } from '../lib.js';
import { t, addStrings } from '../i18n.js';

addStrings({
  en: {
    'diff.caption': 'Changes from version {from} to version {to}',
    'diff.same': 'The two versions have the same script.',
    'diff.tooLarge': 'These scripts are too long to compare here.',
    'diff.folded': '{n} unchanged lines',
    'diff.removed': 'removed',
    'diff.added': 'added',
    'diff.line': 'Line',
  },
  zh: {
    'diff.caption': '从第 {from} 版到第 {to} 版的变化',
    'diff.same': '两个版本的脚本相同。',
    'diff.tooLarge': '脚本太长，无法在此比较。',
    'diff.folded': '{n} 行未变',
    'diff.removed': '删除',
    'diff.added': '新增',
    'diff.line': '行',
  },
});

/** Most lines compared (the table holds (a+1)·(b+1) numbers). */
const MAX_LINES = 4000;
/** Unchanged lines kept around each change. */
const CONTEXT = 3;

/**
 * The edit script from `a` to `b` (arrays of lines): `[{op: ' '|'-'|'+', text, a, b}]`
 * with 1-based line numbers on each side; null when too long.
 */
export function diffLines(a, b) {
  if (a.length > MAX_LINES || b.length > MAX_LINES) return null;
  const w = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * w);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * w + j] = a[i] === b[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i], a: ++i, b: ++j });
    } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
      out.push({ op: '-', text: a[i], a: ++i, b: null });
    } else {
      out.push({ op: '+', text: b[j], a: null, b: ++j });
    }
  }
  while (i < a.length) out.push({ op: '-', text: a[i], a: ++i, b: null });
  while (j < b.length) out.push({ op: '+', text: b[j], a: null, b: ++j });
  return out;
}

/** Folds unchanged stretches longer than twice the context into one row. */
function fold(ops) {
  const keep = ops.map(() => false);
  ops.forEach((o, k) => {
    if (o.op === ' ') return;
    for (let x = Math.max(0, k - CONTEXT); x <= Math.min(ops.length - 1, k + CONTEXT); x++) keep[x] = true;
  });
  const rows = [];
  let skipped = 0;
  ops.forEach((o, k) => {
    if (keep[k]) {
      if (skipped) rows.push({ fold: skipped });
      skipped = 0;
      rows.push(o);
    } else {
      skipped++;
    }
  });
  if (skipped) rows.push({ fold: skipped });
  return rows;
}

/** The diff of `before` and `after` (script texts) of versions `from` and `to`. */
export function DiffView({ before, after, from, to }) {
  const ops = diffLines(before.split('\n'), after.split('\n'));
  if (!ops) return html`<p class="muted">${t('diff.tooLarge')}</p>`;
  if (ops.every((o) => o.op === ' ')) return html`<p class="muted">${t('diff.same')}</p>`;
  return html`<table class="diff">
    <caption>${t('diff.caption', { from, to })}</caption>
    <thead>
      <tr>
        <th scope="col">v${from}</th>
        <th scope="col">v${to}</th>
        <th scope="col"><span class="sr-only">${t('diff.line')}</span></th>
      </tr>
    </thead>
    <tbody>
      ${fold(ops).map((o) =>
        o.fold
          ? html`<tr class="diff-fold"><td colspan="3">… ${t('diff.folded', { n: o.fold })} …</td></tr>`
          : html`<tr class=${o.op === '-' ? 'diff-del' : o.op === '+' ? 'diff-add' : 'diff-same'}>
              <td class="num">${o.a ?? ''}</td>
              <td class="num">${o.b ?? ''}</td>
              <td><code><span class="diff-op" aria-label=${o.op === '-' ? t('diff.removed') : o.op === '+' ? t('diff.added') : undefined}>${o.op}</span>${o.text}</code></td>
            </tr>`,
      )}
    </tbody>
  </table>`;
}
