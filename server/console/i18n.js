// Languages: English and Chinese. The language follows the browser
// (navigator.languages) until the user picks one, which is remembered in
// localStorage (a preference, not a secret). Money and dates are formatted
// with Intl: money with its currency and thousands separators, dates in the
// branch's time zone (the branch's calendar decides due dates and periods).
//
// Each page adds its own strings with `addStrings({en: {...}, zh: {...}})`
// (keys prefixed with the page's name), so pages never edit each other's
// tables. `t(key, params)` looks a key up in the current language, then in
// English, then shows the key itself; `{name}` in a string is replaced
// from params.

const STORAGE_KEY = 'dealflow.lang';
export const LANGUAGES = [
  { id: 'en', name: 'English' },
  { id: 'zh', name: '中文' },
];

const tables = { en: {}, zh: {} };
const listeners = new Set();

/** Adds strings to the tables: `{en: {key: text}, zh: {key: text}}`. */
export function addStrings(strings) {
  for (const [lang, entries] of Object.entries(strings)) {
    tables[lang] = Object.assign(tables[lang] || {}, entries);
  }
}

function browserLanguage() {
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of wanted) {
    const base = String(l).toLowerCase().split('-')[0];
    if (LANGUAGES.some((x) => x.id === base)) return base;
  }
  return 'en';
}

let current = (() => {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.some((x) => x.id === saved)) return saved;
  } catch (_) {
    // Storage may be disabled: follow the browser.
  }
  return browserLanguage();
})();
document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';

/** The current language id (`en` or `zh`). */
export function lang() {
  return current;
}

/** The BCP 47 locale for Intl. */
export function locale() {
  return current === 'zh' ? 'zh-CN' : 'en';
}

/** Switches language, remembers it, and re-renders whoever listens. */
export function setLang(id) {
  current = id;
  document.documentElement.lang = locale();
  try {
    localStorage.setItem(STORAGE_KEY, id);
  } catch (_) {
    // Not remembered; still switched.
  }
  for (const f of listeners) f(id);
}

/** Calls `f` on every language switch; returns the unsubscribe. */
export function onLangChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** The text of `key` in the current language, `{param}`s filled in. */
export function t(key, params) {
  const text = (tables[current] && tables[current][key]) ?? tables.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Money with its currency and thousands separators ("¥1,234.50"). */
export function money(amount, currency) {
  const n = Number(amount);
  if (!Number.isFinite(n)) return String(amount ?? '');
  try {
    return new Intl.NumberFormat(locale(), { style: 'currency', currency: currency || 'CNY' }).format(n);
  } catch (_) {
    return `${new Intl.NumberFormat(locale()).format(n)} ${currency || ''}`.trim();
  }
}

/** A plain number with separators. */
export function number(n) {
  return new Intl.NumberFormat(locale()).format(Number(n));
}

/** A date (no time) in time zone `tz`. */
export function date(ts, tz) {
  if (!ts) return '';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeZone: tz || 'UTC' }).format(new Date(ts));
}

/** A date and time in time zone `tz`. */
export function dateTime(ts, tz) {
  if (!ts) return '';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short', timeZone: tz || 'UTC' }).format(new Date(ts));
}

/** The calendar month (`YYYY-MM`) of `ts` in time zone `tz`. */
export function monthOf(ts, tz) {
  const parts = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', timeZone: tz || 'UTC' }).formatToParts(new Date(ts));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get('year')}-${get('month')}`;
}

// Strings every page shares.
addStrings({
  en: {
    'app.title': 'dealflow',
    'app.language': 'Language',
    'app.signOut': 'Sign out',
    'app.signedInAs': '{user} ({role}, {branch})',
    'app.loading': 'Loading…',
    'app.retry': 'Try again',
    'app.save': 'Save',
    'app.cancel': 'Cancel',
    'app.close': 'Close',
    'app.more': 'Load more',
    'app.nothing': 'Nothing here.',
    'app.live': 'Live',
    'app.offline': 'Reconnecting…',
    'app.sessionEnded': 'Your session ended: {message}',
    'app.notFound': 'No such page.',
    'app.error': 'Error',
    'role.admin': 'admin',
    'role.manager': 'manager',
    'role.rep': 'rep',
    'tier.A': 'A',
    'tier.B': 'B',
    'tier.C': 'C',
    'tier.title': 'Tier {tier}',
  },
  zh: {
    'app.title': 'dealflow',
    'app.language': '语言',
    'app.signOut': '退出登录',
    'app.signedInAs': '{user}（{role}，{branch}）',
    'app.loading': '加载中…',
    'app.retry': '重试',
    'app.save': '保存',
    'app.cancel': '取消',
    'app.close': '关闭',
    'app.more': '加载更多',
    'app.nothing': '暂无内容。',
    'app.live': '实时',
    'app.offline': '正在重新连接…',
    'app.sessionEnded': '会话已结束：{message}',
    'app.notFound': '页面不存在。',
    'app.error': '错误',
    'role.admin': '管理员',
    'role.manager': '经理',
    'role.rep': '销售代表',
    'tier.A': 'A',
    'tier.B': 'B',
    'tier.C': 'C',
    'tier.title': '{tier} 级客户',
  },
});
