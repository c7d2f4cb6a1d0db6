// The console's pages: where each lives (#/path), who sees it in the
// navigation, and its module. To add a page, add its module under pages/
// and one entry here (the manager's, rules and admin pages go after the
// rep's). `roles` decides the navigation only: the API decides what each
// user may read or do, whatever the console shows.

import { Today } from './today.js';
import { Customers } from './customers.js';
import { Deals } from './deals.js';
import { Statement } from './statement.js';

export const PAGES = [
  { path: 'today', label: 'nav.today', roles: ['rep', 'manager'], component: Today },
  { path: 'customers', label: 'nav.customers', roles: ['rep', 'manager', 'admin'], component: Customers },
  { path: 'deals', label: 'nav.deals', roles: ['rep', 'manager', 'admin'], component: Deals },
  { path: 'statement', label: 'nav.statement', roles: ['rep', 'manager'], component: Statement },
];

/** The page a role lands on after signing in. */
export function home(role) {
  return PAGES.find((p) => p.roles.includes(role))?.path || 'customers';
}
