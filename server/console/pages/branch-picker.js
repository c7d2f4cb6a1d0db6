// Which branch a manager's page shows: a manager's own; an admin (who
// belongs to no branch) picks one, remembered in the page's URL
// (`#/team?branch=sh`) so a reload or a shared link shows the same.

import { html, useState, useEffect } from '../lib.js';
import { all } from '../api.js';
import { t, addStrings } from '../i18n.js';
import { useApp } from '../context.js';
import { useRoute, go } from '../router.js';
import { Field } from '../components.js';

addStrings({
  en: { 'branch.pick': 'Branch', 'branch.none': 'Pick a branch' },
  zh: { 'branch.pick': '分公司', 'branch.none': '请选择分公司' },
});

let cache = null;

/** Every branch (read once per page load; a new branch reloads it). */
export function branches(fresh = false) {
  if (!cache || fresh) cache = all('/v1/branches').catch((e) => {
    cache = null;
    throw e;
  });
  return cache;
}

/** `[branch, setBranch]`: the URL's `branch`, else the user's, else the first one. */
export function useBranchParam(params) {
  const { me } = useApp();
  const { path } = useRoute();
  const [branch, setState] = useState(params.branch || me.branch || '');
  useEffect(() => {
    if (branch) return;
    branches().then((list) => list.length && setState(list[0].id), () => null);
  }, []);
  const set = (b) => {
    setState(b);
    go(path, { ...params, branch: b });
  };
  return [branch, set];
}

/** A select of every branch (for admins). */
export function BranchPicker({ value, onChange }) {
  const [list, setList] = useState([]);
  useEffect(() => {
    branches().then(setList, () => setList([]));
  }, []);
  const options = [{ value: '', label: t('branch.none') }, ...list.map((b) => ({ value: b.id, label: `${b.name} (${b.id})` }))];
  return html`<${Field} as="select" label=${t('branch.pick')} name="branch" value=${value} onInput=${onChange} options=${options} />`;
}
