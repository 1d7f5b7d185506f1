import type { Config } from './config.js';
import type { Database } from './db/client.js';
import type { Clock } from './lib/clock.js';
import * as accountsRepo from './modules/accounts/repo.js';
import { createAccountsService } from './modules/accounts/service.js';
import { createAuthService } from './modules/auth/service.js';
import { createCatalogService } from './modules/catalog/service.js';

/** Wires the services once; api, worker and CLI share this wiring. */
export function createServices(deps: { config: Config; database: Database; clock: Clock }) {
  const { db } = deps.database;
  const { clock } = deps;
  return {
    auth: createAuthService({ db, clock }),
    catalog: createCatalogService({ db, clock, findAccount: accountsRepo.findAccount }),
    accounts: createAccountsService({ db, clock, trialWhitelistLimit: deps.config.TRIAL_WHITELIST_LIMIT }),
  };
}

export type Services = ReturnType<typeof createServices>;
