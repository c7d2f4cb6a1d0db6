// Tokens (admins; a branch's manager sees and revokes their reps'): who
// holds a token and whether it works (GET /v1/tokens, paged, never a
// secret), issuing one (admins: the secret is shown once, in a dialog, and
// kept nowhere), and revoking one (DELETE /v1/tokens/{id}): it stops
// working at once, and the holder's open console pages are signed out.

import { html, useState, useEffect } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, dateTime } from '../i18n.js';
import { useApp } from '../context.js';
import { useLive } from '../live.js';
import { Loading, Empty, ErrorBanner, Notice, Field, Dialog, useForm } from '../components.js';
import { usePaged, More } from './paged.js';
import { branches } from './branch-picker.js';

addStrings({
  en: {
    'nav.tokens': 'Tokens',
    'tokens.title': 'Tokens',
    'tokens.user': 'Holder',
    'tokens.role': 'Role',
    'tokens.branch': 'Branch',
    'tokens.status': 'Status',
    'tokens.created': 'Issued',
    'tokens.expires': 'Expires',
    'tokens.lastUsed': 'Last used',
    'tokens.never': 'never',
    'tokens.status.active': 'active',
    'tokens.status.expired': 'expired',
    'tokens.status.revoked': 'revoked',
    'tokens.revokedBy': 'revoked {at} by {by}',
    'tokens.filterStatus': 'Show',
    'tokens.any': 'every status',
    'tokens.revoke': 'Revoke',
    'tokens.revokeNow': 'Revoke it now',
    'tokens.revokeLabel': 'Revoke the token of {user}',
    'tokens.revokeTitle': 'Revoke the token of {user}?',
    'tokens.revokeHint': 'It stops working at once: every request with it is refused and {user}’s open console pages are signed out.',
    'tokens.revoked': 'The token of {user} is revoked.',
    'tokens.issue': 'Issue a token',
    'tokens.issueButton': 'Issue token',
    'tokens.expiresHint': 'Optional: when the token stops working',
    'tokens.secretTitle': 'The token of {user}',
    'tokens.secretHint': 'Give it to {user} now: it is shown this once and stored only as a hash.',
    'tokens.secret': 'Token',
  },
  zh: {
    'nav.tokens': '令牌',
    'tokens.title': '令牌',
    'tokens.user': '持有人',
    'tokens.role': '角色',
    'tokens.branch': '分公司',
    'tokens.status': '状态',
    'tokens.created': '签发',
    'tokens.expires': '到期',
    'tokens.lastUsed': '最近使用',
    'tokens.never': '从未',
    'tokens.status.active': '有效',
    'tokens.status.expired': '已过期',
    'tokens.status.revoked': '已吊销',
    'tokens.revokedBy': '{by} 于 {at} 吊销',
    'tokens.filterStatus': '显示',
    'tokens.any': '全部状态',
    'tokens.revoke': '吊销',
    'tokens.revokeNow': '立即吊销',
    'tokens.revokeLabel': '吊销 {user} 的令牌',
    'tokens.revokeTitle': '吊销 {user} 的令牌？',
    'tokens.revokeHint': '立即失效：使用它的请求都会被拒绝，{user} 打开的控制台页面会退出登录。',
    'tokens.revoked': '{user} 的令牌已吊销。',
    'tokens.issue': '签发令牌',
    'tokens.issueButton': '签发',
    'tokens.expiresHint': '可选：令牌失效的时间',
    'tokens.secretTitle': '{user} 的令牌',
    'tokens.secretHint': '请现在交给 {user}：只显示这一次，服务器只保存其哈希。',
    'tokens.secret': '令牌',
  },
});

function IssueForm({ onIssued }) {
  const [branchIds, setBranchIds] = useState([]);
  useEffect(() => {
    branches().then((l) => setBranchIds(l.map((b) => b.id)), () => setBranchIds([]));
  }, []);
  const form = useForm({ role: 'rep', branch: '', user: '', expires_at: '' });
  const { values, set, errors } = form;
  const submit = async (e) => {
    e.preventDefault();
    try {
      const body = { role: values.role, user: values.user.trim() };
      if (values.role !== 'admin') body.branch = values.branch || branchIds[0];
      if (values.expires_at) body.expires_at = new Date(values.expires_at).toISOString();
      const issued = await form.submit(() => api('POST', '/v1/tokens', { body }));
      form.setValues({ ...values, user: '', expires_at: '' });
      onIssued(issued);
    } catch (_) {
      // at the field
    }
  };
  return html`<form class="card" novalidate onSubmit=${submit}>
    <h2>${t('tokens.issue')}</h2>
    <${ErrorBanner} error=${form.error} />
    <div class="row">
      <${Field} label=${t('tokens.user')} name="user" required value=${values.user} onInput=${set('user')} error=${errors.user} />
      <${Field}
        as="select"
        label=${t('tokens.role')}
        name="role"
        value=${values.role}
        onInput=${set('role')}
        error=${errors.role}
        options=${['rep', 'manager', 'admin'].map((r) => ({ value: r, label: t(`role.${r}`) }))}
      />
    </div>
    <div class="row">
      ${values.role !== 'admin'
        ? html`<${Field}
            as="select"
            label=${t('tokens.branch')}
            name="branch"
            value=${values.branch || branchIds[0] || ''}
            onInput=${set('branch')}
            error=${errors.branch}
            options=${branchIds.map((b) => ({ value: b, label: b }))}
          />`
        : null}
      <${Field} label=${t('tokens.expires')} name="expires_at" type="datetime-local" value=${values.expires_at} onInput=${set('expires_at')} error=${errors.expires_at} hint=${t('tokens.expiresHint')} />
    </div>
    <div class="actions"><button type="submit" disabled=${form.busy}>${t('tokens.issueButton')}</button></div>
  </form>`;
}

function Secret({ issued, onClose }) {
  return html`<${Dialog} title=${t('tokens.secretTitle', { user: issued.user })} onClose=${onClose}>
    <p>${t('tokens.secretHint', { user: issued.user })}</p>
    <${Field} label=${t('tokens.secret')} name="secret" value=${issued.token} readOnly=${true} onFocus=${(e) => e.currentTarget.select()} />
    <div class="actions"><button type="button" onClick=${onClose}>${t('app.close')}</button></div>
  <//>`;
}

function Revoke({ token, onDone, onClose }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      await api('DELETE', `/v1/tokens/${encodeURIComponent(token.id)}`);
      onDone(token);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${t('tokens.revokeTitle', { user: token.user })} onClose=${onClose}>
    <p>${t('tokens.revokeHint', { user: token.user })}</p>
    <${ErrorBanner} error=${error} />
    <div class="actions">
      <button type="button" class="danger" disabled=${busy} onClick=${revoke}>${t('tokens.revokeNow')}</button>
      <button type="button" class="secondary" onClick=${onClose}>${t('app.cancel')}</button>
    </div>
  <//>`;
}

export function Tokens() {
  const { me, tz } = useApp();
  const [status, setStatus] = useState('active');
  const [issued, setIssued] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [notice, setNotice] = useState('');
  const list = usePaged('/v1/tokens', { status: status || undefined }, [status]);
  useLive(['token_revoked'], list.reload);
  const { data, error, loading, reload, rows } = list;
  return html`<section class="tokens" aria-busy=${loading ? 'true' : 'false'}>
    <h1>${t('tokens.title')}</h1>
    <div class="toolbar">
      <${Field}
        as="select"
        label=${t('tokens.filterStatus')}
        name="status"
        value=${status}
        onInput=${setStatus}
        options=${[
          { value: 'active', label: t('tokens.status.active') },
          { value: 'revoked', label: t('tokens.status.revoked') },
          { value: 'expired', label: t('tokens.status.expired') },
          { value: '', label: t('tokens.any') },
        ]}
      />
    </div>
    <${Notice}>${notice}<//>
    <${ErrorBanner} error=${error} onRetry=${reload} />
    ${!data && loading
      ? html`<${Loading} />`
      : rows.length === 0
        ? html`<${Empty} />`
        : html`<table class="list">
            <thead>
              <tr>
                <th scope="col">${t('tokens.user')}</th>
                <th scope="col">${t('tokens.role')}</th>
                <th scope="col">${t('tokens.branch')}</th>
                <th scope="col">${t('tokens.status')}</th>
                <th scope="col">${t('tokens.created')}</th>
                <th scope="col">${t('tokens.lastUsed')}</th>
                <th scope="col"><span class="sr-only">${t('customers.actions')}</span></th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (k) => html`<tr key=${k.id}>
                  <th scope="row">${k.user}</th>
                  <td>${t(`role.${k.role}`)}</td>
                  <td>${k.branch || '—'}</td>
                  <td>
                    <span class="badge token-${k.status}">${t(`tokens.status.${k.status}`)}</span>
                    ${k.revoked_at ? html`<div class="muted">${t('tokens.revokedBy', { at: dateTime(k.revoked_at, tz), by: k.revoked_by })}</div>` : null}
                    ${k.expires_at && k.status === 'active' ? html`<div class="muted">${t('tokens.expires')}: ${dateTime(k.expires_at, tz)}</div>` : null}
                  </td>
                  <td>${dateTime(k.created_at, tz)}</td>
                  <td>${k.last_used_at ? dateTime(k.last_used_at, tz) : t('tokens.never')}</td>
                  <td>
                    ${k.status === 'active'
                      ? html`<button type="button" class="secondary" onClick=${() => setRevoking(k)} aria-label=${t('tokens.revokeLabel', { user: k.user })}>${t('tokens.revoke')}</button>`
                      : null}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`}
    <${More} list=${list} />
    ${me.role === 'admin'
      ? html`<${IssueForm}
          onIssued=${(k) => {
            setIssued(k);
            reload();
          }}
        />`
      : null}
    ${issued ? html`<${Secret} issued=${issued} onClose=${() => setIssued(null)} />` : null}
    ${revoking
      ? html`<${Revoke}
          token=${revoking}
          onClose=${() => setRevoking(null)}
          onDone=${(k) => {
            setRevoking(null);
            setNotice(t('tokens.revoked', { user: k.user }));
            reload();
          }}
        />`
      : null}
  </section>`;
}
