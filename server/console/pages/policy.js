// One policy (#/policy?name=…): its versions and activation history;
// upload a new version from the script editor (or a WebAssembly module),
// with a dry run that compiles it and runs its example tests first, errors
// shown at their line; activate a version (bonus rules optionally from a
// date), roll back to the version live before, deactivate; compare any two
// versions' scripts line by line; simulate a bonus rule version on a real
// past period before activating it.

import { html, useState, useEffect } from '../lib.js';
import { api, all } from '../api.js';
import { t, addStrings, dateTime, date } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, ErrorBanner, Notice, Field, Dialog, useForm } from '../components.js';
import { href } from '../router.js';
import { ScriptEditor, scriptError } from './editor.js';
import { DiffView } from './diff.js';
import { SimulatePanel } from './simulate.js';

addStrings({
  en: {
    'policy.title': 'Policy {name}',
    'policy.back': 'All rules',
    'policy.scope': 'Scope',
    'policy.active': 'Live version',
    'policy.inactive': 'no version is live',
    'policy.latest': 'Latest version',
    'policy.versions': 'Versions',
    'policy.version': 'Version',
    'policy.runtime': 'Runtime',
    'policy.hooks': 'Hooks',
    'policy.tests': 'Example tests',
    'policy.uploaded': 'Uploaded',
    'policy.live': 'live',
    'policy.activate': 'Activate v{version}',
    'policy.activateTitle': 'Activate version {version} of {name}',
    'policy.effectiveFrom': 'Effective from (bonus rules only, optional)',
    'policy.effectiveHint': 'Empty: from now on, for every day. A date: contracts signed before it keep the version they had.',
    'policy.activated': 'Version {version} is live.',
    'policy.rollback': 'Roll back to v{version}',
    'policy.rolledBack': 'Rolled back: version {version} is live again.',
    'policy.deactivate': 'Deactivate',
    'policy.deactivateTitle': 'Deactivate {name}',
    'policy.deactivateHint': 'No version of it decides any more; its scope falls back to what it inherits.',
    'policy.deactivated': 'Deactivated: no version of {name} is live.',
    'policy.confirm': 'Confirm',
    'policy.show': 'Show v{version}',
    'policy.simulate': 'Simulate v{version}',
    'policy.history': 'Activation history',
    'policy.historyLine': '{at}: {what} by {by}',
    'policy.historyFrom': ', effective from {date}',
    'policy.madeLive': 'version {version} made live',
    'policy.madeInactive': 'deactivated',
    'policy.compare': 'Compare versions',
    'policy.compareFrom': 'From version',
    'policy.compareTo': 'To version',
    'policy.compareRun': 'Compare',
    'policy.wasmNoSource': 'A WebAssembly version has no script to show (SHA-256 {sha}).',
    'policy.source': 'Script of version {version}',
    'policy.newVersion': 'Upload a new version',
    'upload.name': 'Name',
    'upload.scope': 'Scope',
    'upload.runtime': 'Kind',
    'upload.rhai': 'rhai script',
    'upload.wasm': 'WebAssembly plugin',
    'upload.script': 'Script',
    'upload.module': 'WebAssembly module (.wasm)',
    'upload.check': 'Run the example tests',
    'upload.upload': 'Upload as a new version',
    'upload.checked': 'Compiles; hooks: {hooks}; example tests passed: {tests}.',
    'upload.noTests': 'none',
    'upload.done': 'Uploaded as version {version} (not live yet).',
    'upload.same': 'Version {version} already has exactly this content.',
    'upload.reading': 'Reading the file…',
    'hook.guard': 'Stage guard',
    'hook.after': 'After a move',
    'hook.tier': 'Customer tiers',
    'hook.cadence': 'Visit cadence',
    'hook.assign': 'Customer assignment',
    'hook.bonus': 'Bonus rules',
  },
  zh: {
    'policy.title': '策略 {name}',
    'policy.back': '全部规则',
    'policy.scope': '范围',
    'policy.active': '生效版本',
    'policy.inactive': '没有生效的版本',
    'policy.latest': '最新版本',
    'policy.versions': '版本',
    'policy.version': '版本',
    'policy.runtime': '类型',
    'policy.hooks': '挂钩',
    'policy.tests': '示例测试',
    'policy.uploaded': '上传',
    'policy.live': '生效中',
    'policy.activate': '激活第 {version} 版',
    'policy.activateTitle': '激活 {name} 的第 {version} 版',
    'policy.effectiveFrom': '生效日期（仅奖金规则，可选）',
    'policy.effectiveHint': '留空：立即对所有日期生效。填写日期：此前签约的合同保留原版本。',
    'policy.activated': '第 {version} 版已生效。',
    'policy.rollback': '回滚到第 {version} 版',
    'policy.rolledBack': '已回滚：第 {version} 版重新生效。',
    'policy.deactivate': '停用',
    'policy.deactivateTitle': '停用 {name}',
    'policy.deactivateHint': '停用后不再由它决定，其范围回到继承的规则。',
    'policy.deactivated': '已停用：{name} 没有生效的版本。',
    'policy.confirm': '确认',
    'policy.show': '查看第 {version} 版',
    'policy.simulate': '模拟第 {version} 版',
    'policy.history': '激活历史',
    'policy.historyLine': '{at}：{by} {what}',
    'policy.historyFrom': '，自 {date} 起生效',
    'policy.madeLive': '使第 {version} 版生效',
    'policy.madeInactive': '停用',
    'policy.compare': '比较版本',
    'policy.compareFrom': '起始版本',
    'policy.compareTo': '目标版本',
    'policy.compareRun': '比较',
    'policy.wasmNoSource': 'WebAssembly 版本没有可显示的脚本（SHA-256 {sha}）。',
    'policy.source': '第 {version} 版的脚本',
    'policy.newVersion': '上传新版本',
    'upload.name': '名称',
    'upload.scope': '范围',
    'upload.runtime': '类型',
    'upload.rhai': 'rhai 脚本',
    'upload.wasm': 'WebAssembly 插件',
    'upload.script': '脚本',
    'upload.module': 'WebAssembly 模块（.wasm）',
    'upload.check': '运行示例测试',
    'upload.upload': '上传为新版本',
    'upload.checked': '编译通过；挂钩：{hooks}；示例测试通过：{tests}。',
    'upload.noTests': '无',
    'upload.done': '已上传为第 {version} 版（尚未生效）。',
    'upload.same': '第 {version} 版的内容与此完全相同。',
    'upload.reading': '正在读取文件…',
    'hook.guard': '阶段守卫',
    'hook.after': '推进之后',
    'hook.tier': '客户分级',
    'hook.cadence': '拜访频率',
    'hook.assign': '客户分配',
    'hook.bonus': '奖金规则',
  },
});

/** A file's bytes as base64 (the API takes WebAssembly modules so). */
function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ''));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

/** The scopes the user may upload to. */
function scopes(me, branchIds) {
  if (me.role === 'admin') return ['global', ...branchIds.map((b) => `branch:${b}`)];
  return me.branch ? [`branch:${me.branch}`] : [];
}

/**
 * Uploads a version: `name` and `scope` given for a new version of an
 * existing policy, chosen in the form for a new policy; `onUploaded(answer)`.
 */
export function UploadForm({ name: fixedName, scope: fixedScope, initialSource = '', branchIds = [], onUploaded }) {
  const { me } = useApp();
  const allowed = scopes(me, branchIds);
  const form = useForm({ name: fixedName || '', scope: fixedScope || allowed[0] || '', runtime: 'rhai', source: initialSource, module: '' });
  const [file, setFile] = useState(null);
  const [checked, setChecked] = useState(null);
  const [apiError, setApiError] = useState(null);
  const { values, set } = form;
  useEffect(() => {
    if (fixedScope) form.setValues((v) => ({ ...v, scope: fixedScope }));
  }, [fixedScope]);
  const send = async (dry) => {
    setChecked(null);
    setApiError(null);
    try {
      const r = await form.submit(async (v) => {
        const body = { name: v.name.trim(), scope: v.scope, runtime: v.runtime };
        if (v.runtime === 'rhai') body.source = v.source;
        else body.module = file ? await readBase64(file) : '';
        if (dry) body.dry_run = true;
        return api('POST', '/v1/policies', { body });
      });
      if (dry) setChecked(r);
      else onUploaded(r);
    } catch (e) {
      setApiError(e);
    }
  };
  const scriptErr = scriptError(apiError);
  return html`<form
    class="upload"
    novalidate
    onSubmit=${(e) => {
      e.preventDefault();
      send(false);
    }}
  >
    ${fixedName
      ? null
      : html`<div class="row">
          <${Field} label=${t('upload.name')} name="name" required value=${values.name} onInput=${set('name')} error=${form.errors.name} hint="[a-z0-9-]{1,40}" />
          <${Field}
            as="select"
            label=${t('upload.scope')}
            name="scope"
            value=${values.scope}
            onInput=${set('scope')}
            error=${form.errors.scope}
            options=${allowed.map((s) => ({ value: s, label: s }))}
          />
        </div>`}
    <${Field}
      as="select"
      label=${t('upload.runtime')}
      name="runtime"
      value=${values.runtime}
      onInput=${set('runtime')}
      error=${form.errors.runtime}
      options=${[
        { value: 'rhai', label: t('upload.rhai') },
        { value: 'wasm', label: t('upload.wasm') },
      ]}
    />
    ${values.runtime === 'rhai'
      ? html`<${ScriptEditor} label=${t('upload.script')} value=${values.source} onInput=${set('source')} error=${scriptErr || (form.errors.source ? { message: form.errors.source } : null)} />`
      : html`<div class="field ${form.errors.module || scriptErr ? 'has-error' : ''}">
          <label for="upload-module">${t('upload.module')}</label>
          <input id="upload-module" type="file" accept=".wasm,application/wasm" onChange=${(e) => setFile(e.currentTarget.files[0] || null)}
            aria-describedby=${form.errors.module || scriptErr ? 'upload-module-error' : undefined} />
          ${form.errors.module || scriptErr
            ? html`<div class="field-error" id="upload-module-error" role="alert">${form.errors.module || scriptErr.message}</div>`
            : null}
        </div>`}
    ${apiError && !scriptErr && !(apiError.field && apiError.field in values) ? html`<${ErrorBanner} error=${apiError} />` : null}
    ${checked
      ? html`<div class="banner ok" role="status">
          ${t('upload.checked', { hooks: checked.hooks.map((h) => t(`hook.${h}`)).join(', '), tests: checked.tests.length ? checked.tests.join(', ') : t('upload.noTests') })}
        </div>`
      : null}
    <div class="actions">
      <button type="button" class="secondary" disabled=${form.busy} onClick=${() => send(true)}>${t('upload.check')}</button>
      <button type="submit" disabled=${form.busy}>${t('upload.upload')}</button>
    </div>
  </form>`;
}

/** What an upload answered, in words. */
export function uploadedText(r) {
  return r.created ? t('upload.done', { version: r.version }) : t('upload.same', { version: r.version });
}

/** The version live before the current one (what `rollback` re-activates), if any. */
export function rollbackTarget(p) {
  const acts = p.activations || [];
  let k = acts.length - 1;
  while (k >= 0 && acts[k].version !== p.active_version) k--;
  for (k -= 1; k >= 0; k--) {
    const v = acts[k].version;
    if (v !== null && v !== undefined && v !== p.active_version) return v;
  }
  return null;
}

function ActivateDialog({ name, version, deactivate, onDone, onClose }) {
  const form = useForm({ effective_from: '' });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const body = form.values.effective_from ? { effective_from: form.values.effective_from } : {};
      const path = deactivate
        ? `/v1/policies/${encodeURIComponent(name)}/deactivate`
        : `/v1/policies/${encodeURIComponent(name)}/versions/${version}/activate`;
      const p = await form.submit(() => api('POST', path, { body }));
      onDone(p);
    } catch (_) {
      // shown by the form
    }
  };
  return html`<${Dialog} title=${deactivate ? t('policy.deactivateTitle', { name }) : t('policy.activateTitle', { name, version })} onClose=${onClose}>
    <form novalidate onSubmit=${submit}>
      ${deactivate ? html`<p>${t('policy.deactivateHint')}</p>` : null}
      <${ErrorBanner} error=${form.error} />
      <${Field}
        label=${t('policy.effectiveFrom')}
        name="effective_from"
        type="date"
        value=${form.values.effective_from}
        onInput=${form.set('effective_from')}
        error=${form.errors.effective_from}
        hint=${t('policy.effectiveHint')}
      />
      <div class="actions">
        <button type="submit" disabled=${form.busy}>${t('policy.confirm')}</button>
        <button type="button" class="secondary" onClick=${onClose}>${t('app.cancel')}</button>
      </div>
    </form>
  <//>`;
}

function Compare({ name, versions }) {
  const rhai = versions.filter((v) => v.runtime === 'rhai');
  const [from, setFrom] = useState(rhai.length > 1 ? String(rhai[rhai.length - 2].version) : '');
  const [to, setTo] = useState(rhai.length ? String(rhai[rhai.length - 1].version) : '');
  const [shown, setShown] = useState(null);
  const [error, setError] = useState(null);
  if (rhai.length < 2) return null;
  const run = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const [a, b] = await Promise.all(
        [from, to].map((v) => api('GET', `/v1/policies/${encodeURIComponent(name)}/versions/${v}`)),
      );
      setShown({ from, to, before: a.source || '', after: b.source || '' });
    } catch (err) {
      setError(err);
    }
  };
  const options = rhai.map((v) => ({ value: String(v.version), label: `v${v.version}` }));
  return html`<section class="compare">
    <h2>${t('policy.compare')}</h2>
    <form class="toolbar" novalidate onSubmit=${run}>
      <${Field} as="select" label=${t('policy.compareFrom')} name="from" value=${from} onInput=${setFrom} options=${options} />
      <${Field} as="select" label=${t('policy.compareTo')} name="to" value=${to} onInput=${setTo} options=${options} />
      <button type="submit">${t('policy.compareRun')}</button>
    </form>
    <${ErrorBanner} error=${error} />
    ${shown ? html`<${DiffView} before=${shown.before} after=${shown.after} from=${shown.from} to=${shown.to} />` : null}
  </section>`;
}

function SourceView({ name, version }) {
  const { data, error } = useAsync(() => api('GET', `/v1/policies/${encodeURIComponent(name)}/versions/${version}`), [name, version]);
  if (!data) return error ? html`<${ErrorBanner} error=${error} />` : html`<${Loading} />`;
  if (data.source === undefined) return html`<p class="muted">${t('policy.wasmNoSource', { sha: data.sha256 })}</p>`;
  return html`<${ScriptEditor} label=${t('policy.source', { version })} value=${data.source} readOnly=${true} />`;
}

export function PolicyPage({ params }) {
  const { me, tz } = useApp();
  const name = params.name || '';
  const [dialog, setDialog] = useState(null); // {version} | {deactivate: true}
  const [panel, setPanel] = useState(null); // {show: v} | {simulate: v}
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState(null);
  const { data, error, loading, reload } = useAsync(async () => {
    const [policy, versions] = await Promise.all([
      api('GET', `/v1/policies/${encodeURIComponent(name)}`),
      all(`/v1/policies/${encodeURIComponent(name)}/versions`),
    ]);
    const latest = [...versions].reverse().find((v) => v.runtime === 'rhai');
    const source = latest ? (await api('GET', `/v1/policies/${encodeURIComponent(name)}/versions/${latest.version}`)).source : '';
    return { policy, versions, source };
  }, [name]);
  useLive(['policy_uploaded', 'policy_activated', 'policy_rolled_back', 'policy_deactivated'], (ev) => {
    if (!ev || !ev.resource || ev.resource.id === name) reload();
  });
  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  const { policy: p, versions, source } = data;
  const back = rollbackTarget(p);
  const rollBack = async () => {
    setActionError(null);
    try {
      await api('POST', `/v1/policies/${encodeURIComponent(name)}/versions/${back}/activate`, { body: {} });
      setNotice(t('policy.rolledBack', { version: back }));
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  const branchOfScope = p.scope.startsWith('branch:') ? p.scope.slice(7) : '';
  // Who may change it (the API decides; the page only leaves out what would be refused):
  // admins, and a branch's manager for the branch's own policies.
  const canEdit = me.role === 'admin' || (me.role === 'manager' && branchOfScope === me.branch);
  return html`<section class="policy" aria-busy=${loading ? 'true' : 'false'}>
    <p><a href=${href('rules')}>← ${t('policy.back')}</a></p>
    <h1>${t('policy.title', { name })}</h1>
    <dl class="facts">
      <dt>${t('policy.scope')}</dt><dd>${p.scope}</dd>
      <dt>${t('policy.active')}</dt><dd>${p.active_version ? `v${p.active_version}` : t('policy.inactive')}</dd>
      <dt>${t('policy.latest')}</dt><dd>v${p.latest_version}</dd>
    </dl>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${actionError} />
    <div class="actions" hidden=${!canEdit}>
      ${back ? html`<button type="button" class="secondary" onClick=${rollBack}>${t('policy.rollback', { version: back })}</button>` : null}
      ${p.active_version ? html`<button type="button" class="secondary" onClick=${() => setDialog({ deactivate: true })}>${t('policy.deactivate')}</button>` : null}
    </div>
    <h2>${t('policy.versions')}</h2>
    <table class="list versions">
      <thead>
        <tr>
          <th scope="col">${t('policy.version')}</th>
          <th scope="col">${t('policy.runtime')}</th>
          <th scope="col">${t('policy.hooks')}</th>
          <th scope="col">${t('policy.tests')}</th>
          <th scope="col">${t('policy.uploaded')}</th>
          <th scope="col"><span class="sr-only">${t('customers.actions')}</span></th>
        </tr>
      </thead>
      <tbody>
        ${[...versions].reverse().map(
          (v) => html`<tr key=${v.version}>
            <th scope="row">v${v.version} ${v.version === p.active_version ? html`<span class="badge live">${t('policy.live')}</span>` : null}</th>
            <td>${v.runtime}</td>
            <td>${v.hooks.map((h) => t(`hook.${h}`)).join(', ')}</td>
            <td>${v.tests.length}</td>
            <td>${v.uploaded_by}, ${dateTime(v.uploaded_at, tz)}<div class="muted"><code>${v.sha256.slice(0, 12)}</code></div></td>
            <td class="row-actions">
              ${v.runtime === 'rhai' ? html`<button type="button" class="secondary" onClick=${() => setPanel({ show: v.version })}>${t('policy.show', { version: v.version })}</button>` : null}
              ${canEdit && v.version !== p.active_version ? html`<button type="button" onClick=${() => setDialog({ version: v.version })}>${t('policy.activate', { version: v.version })}</button>` : null}
              ${v.hooks.includes('bonus') ? html`<button type="button" class="secondary" onClick=${() => setPanel({ simulate: v.version })}>${t('policy.simulate', { version: v.version })}</button>` : null}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${panel && panel.show ? html`<${SourceView} name=${name} version=${panel.show} key=${`s${panel.show}`} />` : null}
    ${panel && panel.simulate ? html`<${SimulatePanel} name=${name} version=${panel.simulate} branch=${branchOfScope} key=${`m${panel.simulate}`} />` : null}
    <${Compare} name=${name} versions=${versions} key=${versions.length} />
    ${canEdit
      ? html`<h2>${t('policy.newVersion')}</h2>
          <${UploadForm}
            name=${name}
            scope=${p.scope}
            initialSource=${source || ''}
            key=${`u${p.latest_version}`}
            onUploaded=${(r) => {
              setNotice(uploadedText(r));
              reload();
            }}
          />`
      : null}
    <h2>${t('policy.history')}</h2>
    <ol class="history">
      ${[...p.activations].reverse().map(
        (a) => html`<li>
          ${t('policy.historyLine', {
            at: dateTime(a.at, tz),
            by: a.by,
            what: a.version ? t('policy.madeLive', { version: a.version }) : t('policy.madeInactive'),
          })}${a.effective_from ? t('policy.historyFrom', { date: date(`${a.effective_from}T00:00:00Z`, 'UTC') }) : ''}
        </li>`,
      )}
    </ol>
    ${dialog
      ? html`<${ActivateDialog}
          name=${name}
          version=${dialog.version}
          deactivate=${!!dialog.deactivate}
          onClose=${() => setDialog(null)}
          onDone=${(np) => {
            setDialog(null);
            setNotice(dialog.deactivate ? t('policy.deactivated', { name }) : t('policy.activated', { version: np.active_version }));
            reload();
          }}
        />`
      : null}
  </section>`;
}
