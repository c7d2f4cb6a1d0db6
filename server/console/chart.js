// Charts as plain SVG (no library, nothing from another origin): bars,
// stacked bars and a funnel. Each takes data and formatters and returns a
// Preact node with a <title> and a text table alternative for screen
// readers; colours come from CSS classes (`series-0`, `series-1`, …), so
// they follow the stylesheet and never need inline styles (CSP).

import { html } from './lib.js';

const W = 640;
const ROW = 28;
const LABEL = 140;
const PAD = 8;

function scale(max) {
  return (v) => (max > 0 ? ((W - LABEL - PAD * 2 - 60) * Math.max(Number(v) || 0, 0)) / max : 0);
}

function Table({ caption, head, rows }) {
  return html`<table class="sr-only">
    <caption>${caption}</caption>
    <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
  </table>`;
}

/**
 * Horizontal bars: `data: [{label, value}]`, `format(value)` for the
 * numbers shown.
 */
export function BarChart({ title, data, format = String }) {
  const max = Math.max(0, ...data.map((d) => Number(d.value) || 0));
  const x = scale(max);
  const h = data.length * ROW + PAD * 2;
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${h}" role="img" aria-label=${title}>
      <title>${title}</title>
      ${data.map((d, i) => {
        const y = PAD + i * ROW;
        return html`<g>
          <text class="chart-label" x=${LABEL - 6} y=${y + ROW / 2 + 4} text-anchor="end">${d.label}</text>
          <rect class="series-0" x=${LABEL} y=${y + 4} width=${x(d.value)} height=${ROW - 8} rx="3" />
          <text class="chart-value" x=${LABEL + x(d.value) + 6} y=${y + ROW / 2 + 4}>${format(d.value)}</text>
        </g>`;
      })}
    </svg>
    <${Table} caption=${title} head=${['', '']} rows=${data.map((d) => [d.label, format(d.value)])} />
  </figure>`;
}

/**
 * Horizontal stacked bars: `data: [{label, parts: {key: value}}]`,
 * `keys: [{key, label}]` in stacking order (colour `series-<index>`).
 */
export function StackedBarChart({ title, data, keys, format = String }) {
  const totals = data.map((d) => keys.reduce((s, k) => s + (Number(d.parts[k.key]) || 0), 0));
  const x = scale(Math.max(0, ...totals));
  const h = data.length * ROW + PAD * 2 + ROW;
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${h}" role="img" aria-label=${title}>
      <title>${title}</title>
      ${data.map((d, i) => {
        const y = PAD + i * ROW;
        let at = LABEL;
        return html`<g>
          <text class="chart-label" x=${LABEL - 6} y=${y + ROW / 2 + 4} text-anchor="end">${d.label}</text>
          ${keys.map((k, j) => {
            const w = x(d.parts[k.key]);
            const r = html`<rect class="series-${j}" x=${at} y=${y + 4} width=${w} height=${ROW - 8}><title>${k.label}: ${format(d.parts[k.key] || 0)}</title></rect>`;
            at += w;
            return r;
          })}
          <text class="chart-value" x=${at + 6} y=${y + ROW / 2 + 4}>${format(totals[i])}</text>
        </g>`;
      })}
      <g>
        ${keys.map(
          (k, j) => html`<g>
            <rect class="series-${j}" x=${LABEL + j * 110} y=${h - ROW + 8} width="12" height="12" />
            <text class="chart-label" x=${LABEL + j * 110 + 16} y=${h - ROW + 18}>${k.label}</text>
          </g>`,
        )}
      </g>
    </svg>
    <${Table}
      caption=${title}
      head=${['', ...keys.map((k) => k.label)]}
      rows=${data.map((d) => [d.label, ...keys.map((k) => format(d.parts[k.key] || 0))])}
    />
  </figure>`;
}

/**
 * A funnel: `stages: [{label, value, count}]` top to bottom, each bar as
 * wide as its value, centred.
 */
export function FunnelChart({ title, stages, format = String }) {
  const max = Math.max(0, ...stages.map((s) => Number(s.value) || 0));
  const inner = W - PAD * 2;
  const h = stages.length * (ROW + 6) + PAD * 2;
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${h}" role="img" aria-label=${title}>
      <title>${title}</title>
      ${stages.map((s, i) => {
        const w = max > 0 ? Math.max((inner * (Number(s.value) || 0)) / max, 2) : 2;
        const y = PAD + i * (ROW + 6);
        return html`<g>
          <rect class="series-${i % 6}" x=${(W - w) / 2} y=${y} width=${w} height=${ROW} rx="3" />
          <text class="chart-funnel" x=${W / 2} y=${y + ROW / 2 + 5} text-anchor="middle">
            ${s.label} · ${s.count ?? ''} · ${format(s.value)}
          </text>
        </g>`;
      })}
    </svg>
    <${Table} caption=${title} head=${['', '', '']} rows=${stages.map((s) => [s.label, s.count ?? '', format(s.value)])} />
  </figure>`;
}

/**
 * Two bars per row, side by side (e.g. active rules against a candidate):
 * `data: [{label, a, b}]`, `series: [labelA, labelB]` (colours `series-0`
 * and `series-1`); the difference `b − a` is written after each pair.
 */
export function PairedBarChart({ title, data, series, format = String }) {
  const max = Math.max(0, ...data.flatMap((d) => [Math.abs(Number(d.a) || 0), Math.abs(Number(d.b) || 0)]));
  // Room on the right for the difference, which is longer than a value.
  const x = (v) => (max > 0 ? ((W - LABEL - PAD * 2 - 120) * v) / max : 0);
  const row = ROW + 14;
  const bar = (ROW - 8) / 2 + 3;
  const h = data.length * row + PAD * 2 + ROW;
  const diff = (d) => {
    const n = (Number(d.b) || 0) - (Number(d.a) || 0);
    return `${n > 0 ? '+' : n < 0 ? '−' : '±'}${format(Math.abs(n))}`;
  };
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${h}" role="img" aria-label=${title}>
      <title>${title}</title>
      ${data.map((d, i) => {
        const y = PAD + i * row;
        const wa = x(Math.abs(Number(d.a) || 0));
        const wb = x(Math.abs(Number(d.b) || 0));
        return html`<g>
          <text class="chart-label" x=${LABEL - 6} y=${y + row / 2 + 2} text-anchor="end">${d.label}</text>
          <rect class="series-0" x=${LABEL} y=${y + 2} width=${wa} height=${bar}><title>${series[0]}: ${format(d.a)}</title></rect>
          <rect class="series-1" x=${LABEL} y=${y + 4 + bar} width=${wb} height=${bar}><title>${series[1]}: ${format(d.b)}</title></rect>
          <text class="chart-value" x=${LABEL + Math.max(wa, wb) + 6} y=${y + row / 2 + 2}>${diff(d)}</text>
        </g>`;
      })}
      <g>
        ${series.map(
          (s, j) => html`<g>
            <rect class="series-${j}" x=${LABEL + j * 200} y=${h - ROW + 8} width="12" height="12" />
            <text class="chart-label" x=${LABEL + j * 200 + 16} y=${h - ROW + 18}>${s}</text>
          </g>`,
        )}
      </g>
    </svg>
    <${Table}
      caption=${title}
      head=${['', ...series, '±']}
      rows=${data.map((d) => [d.label, format(d.a), format(d.b), diff(d)])}
    />
  </figure>`;
}
