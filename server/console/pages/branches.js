// Branches (admins; a manager sees and edits their own branch's
// pipeline): the branch list (GET /v1/branches, paged), a new branch with
// its time zone (the branch's calendar decides due dates and settlement
// periods), and a branch's stage pipeline: its stages in order (id, name,
// open/won/lost) and the moves allowed between them, saved with
// PUT /v1/branches/{id}/pipeline against the version read.

import { html, useState } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner, Notice, Field, useForm } from '../components.js';
import { usePaged, More } from './paged.js';
import { go } from '../router.js';
import { branches } from './branch-picker.js';
import { stageLabel } from './board.js';

addStrings({
  en: {
    'nav.branches': 'Branches',
    'branches.title': 'Branches',
    'branches.id': 'Id',
    'branches.name': 'Name',
    'branches.timezone': 'Time zone',
    'branches.timezoneHint': 'The branch’s calendar: due dates, months and quarters of settlements',
    'branches.create': 'Create branch',
    'branches.created': 'Branch {id} created.',
    'branches.new': 'A new branch',
    'branches.pipeline': 'Pipeline of {branch}',
    'branches.edit': 'Pipeline of {branch}',
    'pipeline.default': 'The default pipeline (the branch has not set its own).',
    'pipeline.stages': 'Stages, in order (new deals start in the first)',
    'pipeline.stageId': 'Stage id',
    'pipeline.stageName': 'Name',
    'pipeline.kind': 'Kind',
    'pipeline.kind.open': 'open',
    'pipeline.kind.won': 'won (signed)',
    'pipeline.kind.lost': 'lost',
    'pipeline.up': 'Move {stage} up',
    'pipeline.down': 'Move {stage} down',
    'pipeline.remove': 'Remove {stage}',
    'pipeline.add': 'Add a stage',
    'pipeline.moves': 'Allowed moves (row: from, column: to)',
    'pipeline.move': 'From {from} to {to}',
    'pipeline.save': 'Save the pipeline',
    'pipeline.saved': 'Pipeline saved (version {version}).',
  },
  zh: {
    'nav.branches': '分公司',
    'branches.title': '分公司',
    'branches.id': '编号',
    'branches.name': '名称',
    'branches.timezone': '时区',
    'branches.timezoneHint': '分公司的日历：到期日、结算的月份和季度',
    'branches.create': '创建分公司',
    'branches.created': '分公司 {id} 已创建。',
    'branches.new': '新建分公司',
    'branches.pipeline': '{branch} 的销售流程',
    'branches.edit': '{branch} 的销售流程',
    'pipeline.default': '默认流程（该分公司尚未设置自己的流程）。',
    'pipeline.stages': '阶段（按顺序，新商机从第一个开始）',
    'pipeline.stageId': '阶段编号',
    'pipeline.stageName': '名称',
    'pipeline.kind': '类型',
    'pipeline.kind.open': '进行中',
    'pipeline.kind.won': '赢单（签约）',
    'pipeline.kind.lost': '丢单',
    'pipeline.up': '上移 {stage}',
    'pipeline.down': '下移 {stage}',
    'pipeline.remove': '删除 {stage}',
    'pipeline.add': '添加阶段',
    'pipeline.moves': '允许的推进（行：从，列：到）',
    'pipeline.move': '从 {from} 到 {to}',
    'pipeline.save': '保存流程',
    'pipeline.saved': '流程已保存（第 {version} 版）。',
  },
});

/** Every IANA time zone the browser knows (the server checks the name). */
function timeZones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch (_) {
    return ['UTC', 'Asia/Shanghai'];
  }
}

function NewBranch({ onCreated }) {
  const form = useForm({ id: '', name: '', timezone: 'Asia/Shanghai' });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const b = await form.submit((v) => api('POST', '/v1/branches', { body: { id: v.id.trim(), name: v.name.trim(), timezone: v.timezone } }));
      form.setValues({ id: '', name: '', timezone: form.values.timezone });
      onCreated(b);
    } catch (_) {
      // shown at the field
    }
  };
  const zones = timeZones();
  return html`<form novalidate onSubmit=${submit} class="card">
    <h2>${t('branches.new')}</h2>
    <${ErrorBanner} error=${form.error} />
    <div class="row">
      <${Field} label=${t('branches.id')} name="id" required value=${form.values.id} onInput=${form.set('id')} error=${form.errors.id} hint="[a-z0-9-]{1,40}" />
      <${Field} label=${t('branches.name')} name="name" required value=${form.values.name} onInput=${form.set('name')} error=${form.errors.name} />
    </div>
    <${Field}
      as="select"
      label=${t('branches.timezone')}
      name="timezone"
      value=${form.values.timezone}
      onInput=${form.set('timezone')}
      error=${form.errors.timezone}
      hint=${t('branches.timezoneHint')}
      options=${zones.map((z) => ({ value: z, label: z }))}
    />
    <div class="actions"><button type="submit" disabled=${form.busy}>${t('branches.create')}</button></div>
  </form>`;
}

/** Edits a copy of `pipeline`; saves it whole. */
function PipelineEditor({ pipeline, onSaved }) {
  const [stages, setStages] = useState(pipeline.stages.map((s) => ({ id: s.id, name: s.name || '', kind: s.kind })));
  const [moves, setMoves] = useState(new Set(pipeline.moves.map((m) => `${m.from}\u0000${m.to}`)));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const change = (i, field) => (v) => setStages(stages.map((s, k) => (k === i ? { ...s, [field]: v } : s)));
  const swap = (i, j) => {
    const next = [...stages];
    [next[i], next[j]] = [next[j], next[i]];
    setStages(next);
  };
  const toggle = (from, to) => {
    const key = `${from}\u0000${to}`;
    const next = new Set(moves);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setMoves(next);
  };
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const ids = new Set(stages.map((s) => s.id));
    const body = {
      stages: stages.map((s) => (s.name ? { id: s.id, name: s.name, kind: s.kind } : { id: s.id, kind: s.kind })),
      moves: [...moves]
        .map((k) => k.split('\u0000'))
        .filter(([f, to]) => ids.has(f) && ids.has(to))
        .map(([from, to]) => ({ from, to })),
    };
    try {
      const r = await api('PUT', `/v1/branches/${encodeURIComponent(pipeline.branch)}/pipeline`, {
        body,
        ifMatch: pipeline.default ? undefined : pipeline.version,
      });
      onSaved(r.pipeline || r);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const label = (s) => s.name || stageLabel(s);
  return html`<form novalidate onSubmit=${save} class="pipeline-editor">
    ${pipeline.default ? html`<p class="muted">${t('pipeline.default')}</p>` : null}
    <h3>${t('pipeline.stages')}</h3>
    <ol class="stages">
      ${stages.map(
        (s, i) => html`<li key=${i} class="stage-row">
          <${Field} label=${t('pipeline.stageId')} name=${`stage-${i}-id`} value=${s.id} onInput=${change(i, 'id')} />
          <${Field} label=${t('pipeline.stageName')} name=${`stage-${i}-name`} value=${s.name} onInput=${change(i, 'name')} />
          <${Field}
            as="select"
            label=${t('pipeline.kind')}
            name=${`stage-${i}-kind`}
            value=${s.kind}
            onInput=${change(i, 'kind')}
            options=${['open', 'won', 'lost'].map((k) => ({ value: k, label: t(`pipeline.kind.${k}`) }))}
          />
          <div class="actions">
            <button type="button" class="secondary" disabled=${i === 0} onClick=${() => swap(i, i - 1)} aria-label=${t('pipeline.up', { stage: s.id })}>↑</button>
            <button type="button" class="secondary" disabled=${i === stages.length - 1} onClick=${() => swap(i, i + 1)} aria-label=${t('pipeline.down', { stage: s.id })}>↓</button>
            <button type="button" class="secondary" onClick=${() => setStages(stages.filter((_, k) => k !== i))} aria-label=${t('pipeline.remove', { stage: s.id })}>✕</button>
          </div>
        </li>`,
      )}
    </ol>
    <button type="button" class="secondary" onClick=${() => setStages([...stages, { id: '', name: '', kind: 'open' }])}>${t('pipeline.add')}</button>
    <h3>${t('pipeline.moves')}</h3>
    <div class="matrix-wrap">
      <table class="matrix">
        <thead>
          <tr><td></td>${stages.map((s) => html`<th scope="col">${label(s)}</th>`)}</tr>
        </thead>
        <tbody>
          ${stages.map(
            (from) => html`<tr>
              <th scope="row">${label(from)}</th>
              ${stages.map(
                (to) => html`<td>
                  ${from.id === to.id
                    ? null
                    : html`<input
                        type="checkbox"
                        checked=${moves.has(`${from.id}\u0000${to.id}`)}
                        onChange=${() => toggle(from.id, to.id)}
                        aria-label=${t('pipeline.move', { from: label(from), to: label(to) })}
                      />`}
                </td>`,
              )}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <${ErrorBanner} error=${error} />
    <div class="actions"><button type="submit" disabled=${busy}>${t('pipeline.save')}</button></div>
  </form>`;
}

function BranchPipeline({ branch }) {
  const [notice, setNotice] = useState('');
  const { data, error, reload } = useAsync(() => api('GET', `/v1/branches/${encodeURIComponent(branch)}/pipeline`), [branch]);
  useLive(['pipeline_changed'], reload);
  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  return html`<section class="card">
    <h2>${t('branches.pipeline', { branch })}</h2>
    <${Notice}>${notice}<//>
    <${PipelineEditor}
      pipeline=${data}
      key=${`${branch}-${data.version}`}
      onSaved=${(p) => {
        setNotice(t('pipeline.saved', { version: p.version }));
        reload();
      }}
    />
  </section>`;
}

export function Branches({ params }) {
  const { me } = useApp();
  const [notice, setNotice] = useState('');
  const list = usePaged('/v1/branches', {}, []);
  useLive(['branch_created'], list.reload);
  const { data, error, loading, reload, rows } = list;
  const selected = params.branch || (me.role === 'admin' ? '' : me.branch);
  return html`<section class="branches" aria-busy=${loading ? 'true' : 'false'}>
    <h1>${t('branches.title')}</h1>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${error} onRetry=${reload} />
    ${!data && loading
      ? html`<${Loading} />`
      : rows.length === 0
        ? html`<${Empty} />`
        : html`<table class="list">
            <thead>
              <tr>
                <th scope="col">${t('branches.id')}</th>
                <th scope="col">${t('branches.name')}</th>
                <th scope="col">${t('branches.timezone')}</th>
                <th scope="col"><span class="sr-only">${t('customers.actions')}</span></th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (b) => html`<tr key=${b.id} aria-current=${b.id === selected ? 'true' : undefined}>
                  <th scope="row">${b.id}</th>
                  <td>${b.name}</td>
                  <td>${b.timezone}</td>
                  <td>
                    <button type="button" class="secondary" onClick=${() => go('branches', { branch: b.id })} aria-label=${t('branches.edit', { branch: b.name })}>
                      ${t('branches.edit', { branch: b.name })}
                    </button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    <${More} list=${list} />
    ${selected ? html`<${BranchPipeline} branch=${selected} key=${selected} />` : null}
    ${me.role === 'admin'
      ? html`<${NewBranch}
          onCreated=${(b) => {
            branches(true);
            setNotice(t('branches.created', { id: b.id }));
            reload();
          }}
        />`
      : null}
  </section>`;
}
