// The console's pages: where each lives (#/path), who sees it in the
// navigation, and its module. To add a page, add its module under pages/
// and one entry here (the manager's, rules and admin pages go after the
// rep's). `roles` decides the navigation only: the API decides what each
// user may read or do, whatever the console shows.

import { Today } from './today.js';
import { Customers } from './customers.js';
import { Deals } from './deals.js';
import { Statement } from './statement.js';
import { Board } from './board.js';
import { Team } from './team.js';
import { Referrals } from './referrals.js';
import { Settlements } from './settlements.js';
import { Rules } from './rules.js';
import { PolicyPage } from './policy.js';
import { Branches } from './branches.js';
import { Brands, FxRates } from './catalog.js';
import { Tokens } from './tokens.js';

export const PAGES = [
  { path: 'today', label: 'nav.today', roles: ['rep', 'manager'], component: Today },
  { path: 'customers', label: 'nav.customers', roles: ['rep', 'manager', 'admin'], component: Customers },
  // Managers and admins get the branch's board (the rep's board with a rep filter and the funnel).
  { path: 'deals', label: 'nav.deals', roles: ['rep'], component: Deals },
  { path: 'board', label: 'nav.board', roles: ['manager', 'admin'], component: Board },
  { path: 'statement', label: 'nav.statement', roles: ['rep', 'manager'], component: Statement },
  { path: 'team', label: 'nav.team', roles: ['manager', 'admin'], component: Team },
  { path: 'referrals', label: 'nav.referrals', roles: ['manager', 'admin'], component: Referrals },
  { path: 'settlements', label: 'nav.settlements', roles: ['manager', 'admin'], component: Settlements },
  { path: 'rules', label: 'nav.rules', roles: ['manager', 'admin'], component: Rules },
  { path: 'policy', label: 'nav.rules', roles: [], component: PolicyPage },
  { path: 'branches', label: 'nav.branches', roles: ['manager', 'admin'], component: Branches },
  { path: 'brands', label: 'nav.brands', roles: ['admin'], component: Brands },
  { path: 'fx', label: 'nav.fx', roles: ['admin'], component: FxRates },
  { path: 'tokens', label: 'nav.tokens', roles: ['manager', 'admin'], component: Tokens },
];

/** The page a role lands on after signing in. */
export function home(role) {
  return PAGES.find((p) => p.roles.includes(role))?.path || 'customers';
}
