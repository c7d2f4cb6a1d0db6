// What every page knows about the signed-in user: who they are (the
// session), their branch and its time zone (dates show in it). Pages read
// it with `useApp()`.

import { createContext, useContext } from './lib.js';

export const AppContext = createContext(null);

/** `{me: {user, role, branch, csrf_token, …}, branch: {id, name, timezone} | null, tz, signOut}` */
export function useApp() {
  return useContext(AppContext);
}
