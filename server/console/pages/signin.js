// Sign-in: the user pastes their token once; POST /v1/sessions checks it
// and answers with an HttpOnly session cookie. The token is never kept:
// not in storage, not in memory after the request.

import { html } from '../lib.js';
import { api } from '../api.js';
import { t, addStrings, LANGUAGES, lang, setLang } from '../i18n.js';
import { Field, ErrorBanner, useForm } from '../components.js';

addStrings({
  en: {
    'signin.title': 'Sign in to dealflow',
    'signin.token': 'Access token',
    'signin.hint': 'The token your administrator gave you. It is exchanged for a session and not stored in this browser.',
    'signin.submit': 'Sign in',
  },
  zh: {
    'signin.title': '登录 dealflow',
    'signin.token': '访问令牌',
    'signin.hint': '管理员发给您的令牌。它只用于换取会话，不会保存在浏览器中。',
    'signin.submit': '登录',
  },
});

export function SignIn({ message, onSignedIn }) {
  const form = useForm({ token: '' });
  const onSubmit = async (e) => {
    e.preventDefault();
    try {
      const me = await form.submit((v) => api('POST', '/v1/sessions', { body: { token: v.token.trim() }, quiet401: true }));
      form.setValues({ token: '' });
      onSignedIn(me);
    } catch (_) {
      // shown by the form
    }
  };
  return html`<main class="signin">
    <form onSubmit=${onSubmit} class="card">
      <h1>${t('signin.title')}</h1>
      ${message ? html`<div class="banner" role="status">${message}</div>` : null}
      <${ErrorBanner} error=${form.error} />
      <${Field}
        label=${t('signin.token')}
        name="token"
        type="password"
        autocomplete="off"
        required
        value=${form.values.token}
        onInput=${form.set('token')}
        error=${form.errors.token}
        hint=${t('signin.hint')}
      />
      <div class="actions">
        <button type="submit" disabled=${form.busy}>${t('signin.submit')}</button>
        <label class="lang">
          <span class="sr-only">${t('app.language')}</span>
          <select value=${lang()} onChange=${(e) => setLang(e.currentTarget.value)} aria-label=${t('app.language')}>
            ${LANGUAGES.map((l) => html`<option value=${l.id}>${l.name}</option>`)}
          </select>
        </label>
      </div>
    </form>
  </main>`;
}
