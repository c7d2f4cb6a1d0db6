// Rules (a manager for their branch, an admin for every branch): which
// policy version decides each hook for the branch, inherited from the
// global policies or overridden by the branch's own
// (GET /v1/branches/{id}/policies); every policy the user may see
// (GET /v1/policies, paged on the server); and a new policy from the
// script editor or a WebAssembly plugin. Each policy opens its own page
// (pages/policy.js).

import { html, useState, useEffect } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { useAsync, Loading, Empty, ErrorBanner } from '../components.js';
import { usePaged, More } from './paged.js';
import { href, go } from '../router.js';
import { BranchPicker, useBranchParam, branches } from './branch-picker.js';
import { UploadForm } from './policy.js';

addStrings({
  en: {
    'nav.rules': 'Rules',
    'rules.title': 'Rules',
    'rules.effective': 'What decides each hook in {branch}',
    'rules.hook': 'Hook',
    'rules.deciding': 'Deciding version',
    'rules.source': 'From',
    'rules.source.inherited': 'inherited (global)',
    'rules.source.overridden': 'the branch’s own',
    'rules.source.none': 'nothing: built-in behaviour',
    'rules.policies': 'Policies',
    'rules.name': 'Name',
    'rules.scope': 'Scope',
    'rules.live': 'Live',
    'rules.latest': 'Latest',
    'rules.none': 'none',
    'rules.new': 'A new policy',
    'rules.newHint': 'A branch policy that implements a hook decides it for that branch instead of the global ones, once it is activated.',
  },
  zh: {
    'nav.rules': '规则',
    'rules.title': '规则',
    'rules.effective': '{branch} 各挂钩由谁决定',
    'rules.hook': '挂钩',
    'rules.deciding': '决定版本',
    'rules.source': '来源',
    'rules.source.inherited': '继承（全局）',
    'rules.source.overridden': '本分公司自有',
    'rules.source.none': '无：内置行为',
    'rules.policies': '策略',
    'rules.name': '名称',
    'rules.scope': '范围',
    'rules.live': '生效',
    'rules.latest': '最新',
    'rules.none': '无',
    'rules.new': '新建策略',
    'rules.newHint': '分公司策略激活后，对其实现的挂钩将替代全局策略为该分公司做决定。',
  },
});

const POLICY_EVENTS = ['policy_uploaded', 'policy_activated', 'policy_rolled_back', 'policy_deactivated'];

function Effective({ branch }) {
  const { data, error, reload } = useAsync(() => api('GET', `/v1/branches/${encodeURIComponent(branch)}/policies`), [branch]);
  useLive(POLICY_EVENTS, reload);
  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  return html`<table class="list effective">
    <caption>${t('rules.effective', { branch })}</caption>
    <thead>
      <tr>
        <th scope="col">${t('rules.hook')}</th>
        <th scope="col">${t('rules.deciding')}</th>
        <th scope="col">${t('rules.source')}</th>
      </tr>
    </thead>
    <tbody>
      ${data.map(
        (h) => html`<tr key=${h.hook}>
          <th scope="row">${t(`hook.${h.hook}`)}</th>
          <td>
            ${h.policies.length
              ? h.policies.map(
                  (p, i) => html`${i ? ', ' : ''}<a href=${href('policy', { name: p.name })}>${p.name} v${p.version}</a> <span class="muted">(${p.runtime})</span>`,
                )
              : t('rules.none')}
          </td>
          <td><span class="badge source-${h.source}">${t(`rules.source.${h.source}`)}</span></td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function PolicyList() {
  const list = usePaged('/v1/policies', {}, []);
  useLive(POLICY_EVENTS, list.reload);
  const { data, error, loading, reload, rows } = list;
  if (!data) return error ? html`<${ErrorBanner} error=${error} onRetry=${reload} />` : html`<${Loading} />`;
  return html`<section aria-busy=${loading ? 'true' : 'false'}>
    ${rows.length === 0
      ? html`<${Empty} />`
      : html`<table class="list">
          <thead>
            <tr>
              <th scope="col">${t('rules.name')}</th>
              <th scope="col">${t('rules.scope')}</th>
              <th scope="col">${t('rules.live')}</th>
              <th scope="col">${t('rules.latest')}</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (p) => html`<tr key=${p.name}>
                <th scope="row"><a href=${href('policy', { name: p.name })}>${p.name}</a></th>
                <td>${p.scope}</td>
                <td>${p.active_version ? `v${p.active_version}` : t('rules.none')}</td>
                <td>v${p.latest_version}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    <${More} list=${list} />
  </section>`;
}

export function Rules({ params }) {
  const { me } = useApp();
  const [branch, setBranch] = useBranchParam(params);
  const [branchIds, setBranchIds] = useState([]);
  useEffect(() => {
    if (me.role === 'admin') branches().then((l) => setBranchIds(l.map((b) => b.id)), () => null);
  }, []);
  return html`<section class="rules">
    <h1>${t('rules.title')}</h1>
    ${me.role === 'admin' ? html`<div class="toolbar"><${BranchPicker} value=${branch} onChange=${setBranch} /></div>` : null}
    ${branch ? html`<${Effective} branch=${branch} key=${branch} />` : null}
    <h2>${t('rules.policies')}</h2>
    <${PolicyList} />
    <h2>${t('rules.new')}</h2>
    <p class="muted">${t('rules.newHint')}</p>
    <${UploadForm} branchIds=${branchIds} onUploaded=${(r) => go('policy', { name: r.name })} />
  </section>`;
}
