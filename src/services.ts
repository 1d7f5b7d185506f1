import type { Config } from './config.js';
import type { ChangeFeed } from './db/change-feed.js';
import type { Database } from './db/client.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createLogger, type Logger } from './lib/logger.js';
import * as accountsRepo from './modules/accounts/repo.js';
import { createAccountsService } from './modules/accounts/service.js';
import { createAuthService } from './modules/auth/service.js';
import { createAuthorizationService } from './modules/authorization/service.js';
import { createPurchaseService } from './modules/credits/purchases.js';
import { createCreditsService } from './modules/credits/service.js';
import { createExophonesService } from './modules/exophones/service.js';
import { createBillingService } from './modules/billing/service.js';
import { createCatalogService } from './modules/catalog/service.js';
import type { PaymentProvider } from './modules/payments/provider.js';
import { createSandboxProvider } from './modules/payments/sandbox.js';
import { createRenewalService } from './modules/renewals/service.js';
import { createSubscriptionsService } from './modules/subscriptions/service.js';
import { createTestClocksService } from './modules/test-clocks/service.js';
import { createUpgradeService } from './modules/upgrade/service.js';
import { createWebhookService } from './modules/webhooks/service.js';

export interface ServiceDeps {
  config: Config;
  database: Database;
  clock: Clock;
  logger?: Logger;
  /** The payment gateway; the sandbox unless another is given. */
  provider?: PaymentProvider;
  /** The database's change notifications: given, the api caches keys and authorization facts. */
  changes?: ChangeFeed;
}

/** Wires the services once; api, worker and CLI share this wiring. */
export function createServices(deps: ServiceDeps) {
  const { db } = deps.database;
  const { clock, config } = deps;
  const logger = deps.logger ?? createLogger({ LOG_LEVEL: 'silent' });
  const provider = deps.provider ?? createSandboxProvider({ db, clock });
  const mandate = { capInr: config.MANDATE_CAP_INR, noticeHours: config.PRE_DEBIT_NOTICE_HOURS };
  const renewals = createRenewalService({
    db,
    clock,
    provider,
    logger,
    taxRates: config.TAX_RATES,
    invoiceDueDays: config.INVOICE_DUE_DAYS,
    dunningRetryDays: config.DUNNING_RETRY_DAYS,
    mandate,
  });
  const purchases = createPurchaseService({
    db,
    clock,
    provider,
    logger,
    taxRates: config.TAX_RATES,
    maxFailures: config.AUTO_RECHARGE_MAX_FAILURES,
    retryMinutes: config.AUTO_RECHARGE_RETRY_MINUTES,
    mandate,
  });
  return {
    renewals,
    purchases,
    // Delivery pacing and signature timestamps are wall-clock matters (receivers check the
    // timestamp against their own clock), so webhooks run on real time, not a billing clock.
    webhooks: createWebhookService({
      db,
      clock: systemClock,
      logger,
      production: config.NODE_ENV === 'production',
      allowedHosts: config.WEBHOOK_ALLOWED_HOSTS,
      retryScale: config.WEBHOOK_RETRY_SCALE,
      secretGraceHours: config.WEBHOOK_SECRET_GRACE_HOURS,
    }),
    subscriptions: createSubscriptionsService({ db, clock }),
    testClocks: createTestClocksService({ db, clock, enabled: config.TEST_CLOCKS_ENABLED, pendingOnClock: renewals.pendingOnClock }),
    auth: createAuthService({ db, clock, changes: deps.changes }),
    credits: createCreditsService({ db, clock }),
    exophones: createExophonesService({ db, clock }),
    authorization: createAuthorizationService({ db, clock, graceDays: config.PAST_DUE_GRACE_DAYS, changes: deps.changes, cacheSize: config.AUTHORIZE_CACHE_ACCOUNTS }),
    catalog: createCatalogService({ db, clock, findAccount: accountsRepo.findAccount }),
    accounts: createAccountsService({ db, clock, trialWhitelistLimit: config.TRIAL_WHITELIST_LIMIT, testClocksEnabled: config.TEST_CLOCKS_ENABLED }),
    billing: createBillingService({ db }),
    upgrades: createUpgradeService({
      db,
      clock,
      provider,
      logger,
      taxRates: config.TAX_RATES,
      invoiceDueDays: config.INVOICE_DUE_DAYS,
      confirmRenewalPayment: (paymentId, reference) => renewals.settle(paymentId, { status: 'succeeded', reference }, reference),
    }),
  };
}

export type Services = ReturnType<typeof createServices>;
