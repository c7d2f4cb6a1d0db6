// The console's entry point: finds out whether a session is open, shows the
// sign-in page or the shell (navigation, language, sign-out, live status)
// with the page the URL's hash names (#/today, #/deals?deal=…), and keeps
// the event stream open while signed in. Pages are listed in pages/index.js.

import { html, render, useState, useEffect } from './lib.js';
import { api, setCsrf, onUnauthorized } from './api.js';
import { t, addStrings, LANGUAGES, lang, setLang, onLangChange } from './i18n.js';
import { connect, disconnect, onStatus, liveStatus } from './live.js';
import { AppContext } from './context.js';
import { PAGES, home } from './pages/index.js';
import { SignIn } from './pages/signin.js';
import { Loading } from './components.js';
import { route, go, useRoute } from './router.js';

addStrings({
  en: {
    'nav.today': 'Today',
    'nav.customers': 'Customers',
    'nav.deals': 'Deals',
    'nav.statement': 'Statement',
    'nav.main': 'Main',
  },
  zh: {
    'nav.today': '今日',
    'nav.customers': '客户',
    'nav.deals': '商机',
    'nav.statement': '奖金明细',
    'nav.main': '主导航',
  },
});

function LiveDot() {
  const [s, setS] = useState(liveStatus());
  useEffect(() => {
    // The stream may have opened between the first render and now.
    setS(liveStatus());
    return onStatus(setS);
  }, []);
  const text = s === 'live' ? t('app.live') : s === 'reconnecting' ? t('app.offline') : '';
  return text ? html`<span class="live live-${s}" role="status">${text}</span>` : null;
}

function Shell({ app }) {
  const { path, params } = useRoute();
  const { me } = app;
  const pages = PAGES.filter((p) => p.roles.includes(me.role));
  const page = PAGES.find((p) => p.path === path);
  useEffect(() => {
    if (!path) go(home(me.role));
  }, [path]);
  const Page = page && page.component;
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href=${`#/${home(me.role)}`}>${t('app.title')}</a>
      <nav aria-label=${t('nav.main')}>
        <ul>
          ${pages.map(
            (p) => html`<li><a href=${`#/${p.path}`} aria-current=${p.path === path ? 'page' : undefined}>${t(p.label)}</a></li>`,
          )}
        </ul>
      </nav>
      <div class="who">
        <span class="muted">${t('app.signedInAs', { user: me.user, role: t(`role.${me.role}`), branch: me.branch || '—' })}</span>
        <${LiveDot} />
        <label class="lang">
          <span class="sr-only">${t('app.language')}</span>
          <select value=${lang()} onChange=${(e) => setLang(e.currentTarget.value)} aria-label=${t('app.language')}>
            ${LANGUAGES.map((l) => html`<option value=${l.id}>${l.name}</option>`)}
          </select>
        </label>
        <button type="button" class="secondary" onClick=${app.signOut}>${t('app.signOut')}</button>
      </div>
    </header>
    <main id="main">
      ${Page ? html`<${Page} params=${params} key=${path} />` : path ? html`<p>${t('app.notFound')}</p>` : null}
    </main>
  </div>`;
}

function App() {
  const [state, setState] = useState({ phase: 'loading' });
  const [, setLangTick] = useState(0);
  useEffect(() => onLangChange(() => setLangTick((n) => n + 1)), []);

  const ended = (message) => {
    disconnect();
    setCsrf('');
    setState({ phase: 'signin', message });
  };

  const start = async (me) => {
    setCsrf(me.csrf_token);
    let branch = null;
    if (me.branch) {
      try {
        branch = await api('GET', `/v1/branches/${encodeURIComponent(me.branch)}`);
      } catch (_) {
        branch = { id: me.branch, name: me.branch, timezone: 'UTC' };
      }
    }
    connect((message) => ended(t('app.sessionEnded', { message })));
    setState({ phase: 'in', me, branch });
  };

  useEffect(() => {
    onUnauthorized((e) => ended(t('app.sessionEnded', { message: e.message })));
    api('GET', '/v1/sessions/current', { quiet401: true }).then(start, () => setState({ phase: 'signin' }));
  }, []);

  if (state.phase === 'loading') return html`<${Loading} />`;
  if (state.phase === 'signin') {
    return html`<${SignIn}
      message=${state.message}
      onSignedIn=${(me) => {
        start(me);
        if (!route().path) go(home(me.role));
      }}
    />`;
  }
  const app = {
    me: state.me,
    branch: state.branch,
    tz: (state.branch && state.branch.timezone) || 'UTC',
    signOut: async () => {
      try {
        await api('DELETE', '/v1/sessions/current', { quiet401: true });
      } catch (_) {
        // Already over on the server: signed out either way.
      }
      ended('');
    },
  };
  return html`<${AppContext.Provider} value=${app}><${Shell} app=${app} /><//>`;
}

render(html`<${App} />`, document.getElementById('app'));
