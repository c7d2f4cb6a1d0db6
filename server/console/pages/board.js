// The branch's board (a manager's, or an admin's for any branch): the
// pipeline funnel by stage and value (GET /v1/reports/pipeline, counted on
// the server, so a big branch costs one request) above the rep's board
// (pages/deals.js), both filtered by rep.

import { html, useState, useEffect } from '../lib.js';
import { api, all } from '../api.js';
import { t, addStrings, money, number } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, ErrorBanner, Field } from '../components.js';
import { FunnelChart } from '../chart.js';
import { go } from '../router.js';
import { Deals } from './deals.js';
import { BranchPicker, useBranchParam } from './branch-picker.js';

addStrings({
  en: {
    'nav.board': 'Board',
    'board.title': 'Board',
    'board.rep': 'Rep',
    'board.everyone': 'Every rep',
    'board.funnel': 'Pipeline by stage: deals and value (CNY at today’s rates)',
    'board.lost': '{n} lost',
    'board.unconverted': '{n} deals in a currency without an FX rate are counted but not valued.',
    'board.deals': 'Deals by stage',
  },
  zh: {
    'nav.board': '看板',
    'board.title': '看板',
    'board.rep': '销售代表',
    'board.everyone': '全部销售代表',
    'board.funnel': '各阶段商机：数量与金额（按今日汇率折合人民币）',
    'board.lost': '丢单 {n} 个',
    'board.unconverted': '{n} 个商机的币种没有汇率：已计数，未计金额。',
    'board.deals': '按阶段的商机',
  },
});

/** A stage's name in the current language (the default stages are translated). */
export function stageLabel(s) {
  const key = `stage.${s.stage || s.id}`;
  const known = t(key);
  return known !== key ? known : s.name || s.stage || s.id;
}

/** The reps of a branch, from its tokens (every status: a rep who left still owns deals). */
export function useReps(branch) {
  const [reps, setReps] = useState([]);
  useEffect(() => {
    if (!branch) return;
    all('/v1/tokens', { branch }).then(
      (tokens) => setReps([...new Set(tokens.filter((x) => x.role === 'rep').map((x) => x.user))].sort()),
      () => setReps([]),
    );
  }, [branch]);
  return reps;
}

export function Board({ params }) {
  const { me } = useApp();
  const [branch, setBranch] = useBranchParam(params);
  const owner = params.owner || '';
  const reps = useReps(branch);
  const funnel = useAsync(
    () => (branch ? api('GET', '/v1/reports/pipeline', { query: { branch, owner } }) : Promise.resolve(null)),
    [branch, owner],
  );
  useLive(['deal_created', 'deal_changed', 'transition', 'owner_changed', 'deal_cancelled', 'pipeline_changed'], funnel.reload);
  const report = funnel.data;
  const shown = report ? report.stages.filter((s) => s.kind !== 'lost') : [];
  const lost = report ? report.stages.filter((s) => s.kind === 'lost').reduce((n, s) => n + s.deals, 0) : 0;
  return html`<section class="board-page">
    <h1>${t('board.title')}</h1>
    <div class="toolbar">
      ${me.role === 'admin' ? html`<${BranchPicker} value=${branch} onChange=${setBranch} />` : null}
      <${Field}
        as="select"
        label=${t('board.rep')}
        name="owner"
        value=${owner}
        onInput=${(v) => go('board', { ...params, branch, owner: v })}
        options=${[{ value: '', label: t('board.everyone') }, ...reps.map((r) => ({ value: r, label: r }))]}
      />
    </div>
    <${ErrorBanner} error=${funnel.error} onRetry=${funnel.reload} />
    ${report
      ? html`<h2>${t('board.funnel')}</h2>
          <${FunnelChart}
            title=${t('board.funnel')}
            stages=${shown.map((s) => ({ label: stageLabel(s), value: s.value, count: number(s.deals) }))}
            format=${(v) => money(v, 'CNY')}
          />
          <p class="muted">
            ${t('board.lost', { n: number(lost) })}
            ${report.unconverted ? html` · ${t('board.unconverted', { n: number(report.unconverted) })}` : null}
          </p>`
      : null}
    ${branch ? html`<${Deals} branch=${branch} owner=${owner} heading=${t('board.deals')} key=${branch} />` : null}
  </section>`;
}
