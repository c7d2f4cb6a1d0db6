// My deals: a board by stage of the branch's pipeline. Moving a card first
// asks the server (POST /v1/deals/{id}/transitions with dry_run) and shows
// every guard's verdict and what is missing, with the form that supplies
// each missing thing (log a communication record, record the needs) right
// there; once the server says yes, the move is made. A veto names its rule
// in words a rep understands. Updates live when a deal changes elsewhere.

import { html, useState, useEffect } from '../lib.js';
import { api, all, ApiError } from '../api.js';
import { t, addStrings, money, date } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Notice, Dialog, Field, useForm } from '../components.js';
import { RecordForm } from './record-form.js';

addStrings({
  en: {
    'deals.title': 'My deals',
    'deals.titleAll': 'Deals',
    'deals.board': 'Deals by stage',
    'deals.count': '{n} deals',
    'deals.move': 'Move',
    'deals.moveTitle': 'Move “{deal}”',
    'deals.to': 'Move to',
    'deals.check': 'Check',
    'deals.checking': 'Asking the server…',
    'deals.allowed': 'Every check passes: the deal can move to {stage}.',
    'deals.refused': 'The deal cannot move to {stage} yet.',
    'deals.verdicts': 'Checks',
    'deals.pass': 'passes',
    'deals.veto': 'refuses',
    'deals.missing': 'What is missing',
    'deals.supplyRecord': 'Log a record with {customer}',
    'deals.supplyNeeds': "Record the customer's needs",
    'deals.moveNow': 'Move to {stage}',
    'deals.moved': '“{deal}” moved to {stage}.',
    'deals.signed': 'Signed {date}',
    'deals.needs': "Customer's needs (one per line)",
    'deals.saveNeeds': 'Save needs',
    'deals.noMoves': 'This deal is in a final stage.',
    'deals.rule': 'Rule: {rule}',
    'deals.builtin': 'the pipeline',
  },
  zh: {
    'deals.title': '我的商机',
    'deals.titleAll': '商机',
    'deals.board': '按阶段的商机看板',
    'deals.count': '{n} 个商机',
    'deals.move': '推进',
    'deals.moveTitle': '推进“{deal}”',
    'deals.to': '推进到',
    'deals.check': '检查',
    'deals.checking': '正在询问服务器…',
    'deals.allowed': '全部检查通过：可以推进到 {stage}。',
    'deals.refused': '暂时不能推进到 {stage}。',
    'deals.verdicts': '检查结果',
    'deals.pass': '通过',
    'deals.veto': '拒绝',
    'deals.missing': '还缺少',
    'deals.supplyRecord': '填写与 {customer} 的沟通记录',
    'deals.supplyNeeds': '记录客户需求',
    'deals.moveNow': '推进到 {stage}',
    'deals.moved': '“{deal}”已推进到 {stage}。',
    'deals.signed': '签约于 {date}',
    'deals.needs': '客户需求（每行一条）',
    'deals.saveNeeds': '保存需求',
    'deals.noMoves': '该商机已处于最终阶段。',
    'deals.rule': '规则：{rule}',
    'deals.builtin': '销售流程',
  },
});

// The default policies' rules, as a rep would say them. A branch's own
// policy shows under its name, with its own reason.
addStrings({
  en: {
    'rule.quote-late': 'Quote late: a price is quoted only once the customer’s needs are known and the customer has been met since the deal opened',
    'stage.lead': 'Lead',
    'stage.qualify': 'Qualify',
    'stage.visit': 'Visit',
    'stage.quote': 'Quote',
    'stage.sign': 'Signed',
    'stage.lost': 'Lost',
  },
  zh: {
    'rule.quote-late': '晚报价：只有在明确客户需求、并且商机开启后与客户沟通过，才能报价',
    'stage.lead': '线索',
    'stage.qualify': '确认需求',
    'stage.visit': '拜访',
    'stage.quote': '报价',
    'stage.sign': '签约',
    'stage.lost': '丢单',
    'the deal must pass `qualify` first': '商机必须先经过“确认需求”阶段',
    "record the customer's needs (the real need behind the stated one: budget, decision makers, competing bids)":
      '记录客户需求（表面需求背后的真实需求：预算、决策人、竞争对手报价）',
    'log a communication record with the customer since the deal was opened': '商机开启后，需填写一条与客户的沟通记录',
  },
});

/** A stage's name: the translation of a default stage, else the pipeline's name. */
function stageName(pipeline, id) {
  const s = pipeline.stages.find((x) => x.id === id);
  const key = `stage.${id}`;
  const known = t(key);
  return known !== key ? known : (s && s.name) || id;
}

/** A policy's sentence in the current language when known, else as written. */
function policyText(s) {
  return t(s);
}

/** A rule's name in words: the known default rules, else the policy's name. */
function ruleName(policy, version) {
  if (version === 0) return t('deals.builtin');
  const key = `rule.${policy}`;
  const known = t(key);
  return known !== key ? known : `${policy} v${version}`;
}

/** Which form supplies a missing thing, from its sentence. */
function remedy(text) {
  if (/\bneeds?\b|需求/i.test(text)) return 'needs';
  if (/record|visit|contact|\bmet\b|communicat|记录|拜访|沟通/i.test(text)) return 'record';
  return null;
}

function NeedsForm({ deal, onSaved, onCancel }) {
  const form = useForm({ needs: (deal.needs || []).join('\n') });
  const onSubmit = async (e) => {
    e.preventDefault();
    const needs = form.values.needs
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    try {
      const d = await form.submit(() => api('PATCH', `/v1/deals/${encodeURIComponent(deal.id)}`, { body: { needs }, ifMatch: deal.version }));
      onSaved(d);
    } catch (_) {
      // shown by the form
    }
  };
  return html`<form onSubmit=${onSubmit} class="needs-form">
    <${ErrorBanner} error=${form.error} />
    <${Field} as="textarea" label=${t('deals.needs')} name="needs" value=${form.values.needs} onInput=${form.set('needs')} error=${form.errors.needs} />
    <div class="actions">
      <button type="submit" disabled=${form.busy}>${t('deals.saveNeeds')}</button>
      <button type="button" class="secondary" onClick=${onCancel}>${t('app.cancel')}</button>
    </div>
  </form>`;
}

/** The move panel: pick a stage, see the server's verdicts, supply what is missing, move. */
function MovePanel({ deal: initial, customer, pipeline, onMoved, onClose }) {
  const [deal, setDeal] = useState(initial);
  const targets = pipeline.moves.filter((m) => m.from === deal.stage).map((m) => m.to);
  const [to, setTo] = useState(targets.find((x) => x !== 'lost') || targets[0] || '');
  const [check, setCheck] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [supply, setSupply] = useState(null); // 'record' | 'needs'

  const dryRun = async (target = to) => {
    if (!target) return;
    setBusy(true);
    setError(null);
    try {
      setCheck(await api('POST', `/v1/deals/${encodeURIComponent(deal.id)}/transitions`, { body: { to: target, dry_run: true } }));
    } catch (e) {
      setCheck(null);
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    dryRun(to);
  }, [to]);

  const move = async () => {
    setBusy(true);
    setError(null);
    try {
      const moved = await api('POST', `/v1/deals/${encodeURIComponent(deal.id)}/transitions`, { body: { to }, ifMatch: deal.version });
      onMoved(moved);
    } catch (e) {
      setError(e);
      // A veto that came up meanwhile: show it as the dry run would.
      if (e instanceof ApiError && e.code === 'guard_rejected') dryRun(to);
    } finally {
      setBusy(false);
    }
  };

  const supplied = async () => {
    setSupply(null);
    try {
      setDeal(await api('GET', `/v1/deals/${encodeURIComponent(deal.id)}`));
    } catch (_) {
      // the dry run below says what matters
    }
    dryRun(to);
  };

  if (targets.length === 0) return html`<p>${t('deals.noMoves')}</p>`;
  const stage = stageName(pipeline, to);
  return html`<div class="move-panel">
    <${Field}
      as="select"
      label=${t('deals.to')}
      name="to"
      value=${to}
      onInput=${setTo}
      options=${targets.map((s) => ({ value: s, label: stageName(pipeline, s) }))}
    />
    ${busy && !check ? html`<p class="muted" role="status">${t('deals.checking')}</p>` : null}
    <${ErrorBanner} error=${error} />
    ${check
      ? html`<div class="verdict ${check.allowed ? 'ok' : 'refused'}" role="status" aria-live="polite">
          <p><strong>${check.allowed ? t('deals.allowed', { stage }) : t('deals.refused', { stage })}</strong></p>
          <h3>${t('deals.verdicts')}</h3>
          <ul class="verdicts">
            ${check.verdicts.map(
              (v) => html`<li class=${v.allow ? 'pass' : 'veto'}>
                <span class="mark" aria-hidden="true">${v.allow ? '✓' : '✗'}</span>
                <span>${t('deals.rule', { rule: ruleName(v.policy, v.version) })}: <strong>${v.allow ? t('deals.pass') : t('deals.veto')}</strong></span>
                ${v.reason ? html`<div class="reason">${v.reason}</div>` : null}
              </li>`,
            )}
          </ul>
          ${check.missing.length
            ? html`<h3>${t('deals.missing')}</h3>
                <ul class="missing">
                  ${check.missing.map((m) => {
                    const fix = remedy(m);
                    return html`<li>
                      <span>${policyText(m)}</span>
                      ${fix === 'record'
                        ? html` <button type="button" class="link" onClick=${() => setSupply('record')}>${t('deals.supplyRecord', { customer: customer ? customer.name : '' })}</button>`
                        : fix === 'needs'
                          ? html` <button type="button" class="link" onClick=${() => setSupply('needs')}>${t('deals.supplyNeeds')}</button>`
                          : null}
                    </li>`;
                  })}
                </ul>`
            : null}
        </div>`
      : null}
    ${supply === 'record'
      ? html`<div class="supply"><h3>${t('record.title', { customer: customer ? customer.name : '' })}</h3>
          <${RecordForm} customer=${customer || { id: deal.customer_id, name: deal.customer_id }} onSaved=${supplied} onCancel=${() => setSupply(null)} /></div>`
      : null}
    ${supply === 'needs' ? html`<div class="supply"><${NeedsForm} deal=${deal} onSaved=${supplied} onCancel=${() => setSupply(null)} /></div>` : null}
    <div class="actions">
      <button type="button" onClick=${move} disabled=${busy || !check || !check.allowed}>${t('deals.moveNow', { stage })}</button>
      <button type="button" class="secondary" onClick=${onClose}>${t('app.close')}</button>
    </div>
  </div>`;
}

/**
 * The board. The manager's board (pages/board.js) shows it for `branch`
 * (an admin's pick) and one rep (`owner`), under its own `heading`.
 */
export function Deals({ branch: forBranch, owner: forOwner, heading } = {}) {
  const { me, tz } = useApp();
  const [moving, setMoving] = useState(null);
  const [notice, setNotice] = useState('');
  const branch = forBranch || me.branch;
  const owner = me.role === 'rep' ? me.user : forOwner || undefined;
  const { data, error, loading, reload } = useAsync(async () => {
    const [pipeline, deals] = await Promise.all([
      api('GET', `/v1/branches/${encodeURIComponent(branch)}/pipeline`),
      all('/v1/deals', { branch, owner }),
    ]);
    const ids = [...new Set(deals.map((d) => d.customer_id))];
    const customers = {};
    await Promise.all(
      ids.map((id) =>
        api('GET', `/v1/customers/${encodeURIComponent(id)}`).then(
          (c) => (customers[id] = c),
          () => null,
        ),
      ),
    );
    return { pipeline, deals, customers };
  }, [branch, owner]);
  useLive(['deal_created', 'deal_changed', 'transition', 'owner_changed', 'deal_cancelled', 'pipeline_changed'], reload);

  if (!branch) return html`<p>${t('app.nothing')}</p>`;
  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  const { pipeline, deals, customers } = data;
  return html`<section class="deals" aria-busy=${loading ? 'true' : 'false'}>
    ${heading ? html`<h2>${heading}</h2>` : html`<h1>${me.role === 'rep' ? t('deals.title') : t('deals.titleAll')}</h1>`}
    <${ErrorBanner} error=${error} onRetry=${reload} />
    <${Notice}>${notice}<//>
    ${deals.length === 0 ? html`<${Empty} />` : null}
    <div class="board" role="list" aria-label=${t('deals.board')}>
      ${pipeline.stages.map((s) => {
        const here = deals.filter((d) => d.stage === s.id);
        const total = here.reduce((sum, d) => sum + Number(d.amount_total || 0), 0);
        return html`<section class="column stage-${s.kind}" role="listitem" aria-labelledby=${`col-${s.id}`} key=${s.id}>
          <h2 id=${`col-${s.id}`}>${stageName(pipeline, s.id)} <span class="muted">${here.length}</span></h2>
          ${here.length && here.every((d) => d.currency === here[0].currency) ? html`<div class="muted">${money(total, here[0].currency)}</div>` : null}
          <ul class="cards">
            ${here.map(
              (d) => html`<li class="card deal-card" key=${d.id}>
                <div class="deal-title">${d.title}</div>
                <div class="muted">${customers[d.customer_id] ? customers[d.customer_id].name : d.customer_id}</div>
                <div class="amount">${money(d.amount_total, d.currency)}</div>
                ${d.signed_at ? html`<div class="signed">${t('deals.signed', { date: date(d.signed_at, tz) })}</div>` : null}
                ${pipeline.moves.some((m) => m.from === d.stage)
                  ? html`<button type="button" class="secondary" onClick=${() => setMoving(d)} aria-label=${`${t('deals.move')}: ${d.title}`}>${t('deals.move')}</button>`
                  : null}
              </li>`,
            )}
          </ul>
        </section>`;
      })}
    </div>
    ${moving
      ? html`<${Dialog} title=${t('deals.moveTitle', { deal: moving.title })} onClose=${() => setMoving(null)}>
          <${MovePanel}
            deal=${moving}
            customer=${customers[moving.customer_id]}
            pipeline=${pipeline}
            onClose=${() => setMoving(null)}
            onMoved=${(d) => {
              setMoving(null);
              setNotice(t('deals.moved', { deal: d.title, stage: stageName(pipeline, d.stage) }));
              reload();
            }}
          />
        <//>`
      : null}
  </section>`;
}
