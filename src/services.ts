import { secretsKeysOf, taxationOf, type Config } from './config.js';
import { createCreditNotesService } from './modules/credit-notes/service.js';
import type { ChangeFeed } from './db/change-feed.js';
import type { Database } from './db/client.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createLogger, type Logger } from './lib/logger.js';
import { createSecretBox } from './lib/secret-box.js';
import * as accountsRepo from './modules/accounts/repo.js';
import { createAccountsService } from './modules/accounts/service.js';
import { createKeyHasher } from './modules/auth/domain.js';
import { createAuthService } from './modules/auth/service.js';
import { createAuthorizationService } from './modules/authorization/service.js';
import { createPurchaseService } from './modules/credits/purchases.js';
import { createCreditsService } from './modules/credits/service.js';
import { createDepletionForecasts } from './modules/credits/alerts.js';
import { createHoldsService } from './modules/holds/service.js';
import { createExophonesService } from './modules/exophones/service.js';
import { createBillingService } from './modules/billing/service.js';
import { createCatalogService } from './modules/catalog/service.js';
import type { PaymentProvider } from './modules/payments/provider.js';
import { createSandboxProvider } from './modules/payments/sandbox.js';
import { createInvoicePayments } from './modules/payments/invoice-payments.js';
import { createPaymentMethodsService } from './modules/payments/methods-service.js';
import { createPaymentsService } from './modules/payments/service.js';
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

let warnedOfDevelopmentKey = false;

/** Wires the services once; api, worker and CLI share this wiring. */
export function createServices(deps: ServiceDeps) {
  const { db } = deps.database;
  const { clock, config } = deps;
  const logger = deps.logger ?? createLogger({ LOG_LEVEL: 'silent' });
  const provider = deps.provider ?? createSandboxProvider({ db, clock });
  const mandate = { capInr: config.MANDATE_CAP_INR, noticeHours: config.PRE_DEBIT_NOTICE_HOURS };
  const secretsKeys = secretsKeysOf(config);
  if (!config.SECRETS_KEYS && !warnedOfDevelopmentKey) {
    warnedOfDevelopmentKey = true;
    logger.warn('SECRETS_KEYS is unset: webhook secrets and API key hashes use the public development key; set it before holding real data');
  }
  // Delivery pacing and signature timestamps are wall-clock matters (receivers check the
  // timestamp against their own clock), so webhooks run on real time, not a billing clock.
  const webhooks = createWebhookService({
    db,
    clock: systemClock,
    logger,
    production: config.NODE_ENV === 'production',
    allowedHosts: config.WEBHOOK_ALLOWED_HOSTS,
    retryScale: config.WEBHOOK_RETRY_SCALE,
    secretGraceHours: config.WEBHOOK_SECRET_GRACE_HOURS,
    secrets: createSecretBox(secretsKeys),
  });
  const auth = createAuthService({ db, clock, hasher: createKeyHasher(secretsKeys), changes: deps.changes });
  const authorization = createAuthorizationService({ db, clock, graceDays: config.PAST_DUE_GRACE_DAYS, changes: deps.changes, cacheSize: config.AUTHORIZE_CACHE_ACCOUNTS });
  // A service that committed a change to what authorize reads says so: this process drops the
  // account at once, so the caller's next check sees it (other processes hear the database's
  // notification). Without a change feed (worker, CLI) nothing is cached: a no-op.
  const accountChanged = authorization.invalidate;
  const taxation = taxationOf(config);
  // One payment lifecycle; upgrades, renewals and purchases each register what their payments mean.
  const payments = createPaymentsService({ db, clock, provider, logger, accountChanged });
  const paymentMethods = createPaymentMethodsService({ db, clock, provider, logger, mandate });
  const renewals = createRenewalService({
    db,
    clock,
    logger,
    taxation,
    invoiceDueDays: config.INVOICE_DUE_DAYS,
    dunningRetryDays: config.DUNNING_RETRY_DAYS,
    mandate,
    payments,
  });
  const purchases = createPurchaseService({
    db,
    clock,
    provider,
    logger,
    taxation,
    maxFailures: config.AUTO_RECHARGE_MAX_FAILURES,
    retryMinutes: config.AUTO_RECHARGE_RETRY_MINUTES,
    invoiceDueDays: config.INVOICE_DUE_DAYS,
    mandate,
    payments,
  });
  const credits = createCreditsService({
    db,
    clock,
    accountChanged,
    alerts: { lowBalance: { INR: config.LOW_BALANCE_THRESHOLD_INR, USD: config.LOW_BALANCE_THRESHOLD_USD }, forecastHours: config.DEPLETION_FORECAST_HOURS },
  });
  return {
    payments,
    paymentMethods,
    invoicePayments: createInvoicePayments({ db, clock, payments, methods: paymentMethods }),
    renewals,
    purchases,
    webhooks,
    /**
     * Secrets at rest under the first SECRETS_KEYS key: webhook secrets (plain or under an
     * older key) sealed again, legacy SHA-256 key hashes converted. Idempotent; run by
     * `ops secrets:rotate` and at worker start.
     */
    secrets: {
      rotate: async () => ({ webhooks: await webhooks.resealSecrets(), apiKeys: await auth.rehashLegacyKeys() }),
    },
    subscriptions: createSubscriptionsService({ db, clock, taxation, mandate }),
    testClocks: createTestClocksService({ db, clock, enabled: config.TEST_CLOCKS_ENABLED, pendingOnClock: renewals.pendingOnClock }),
    auth,
    credits,
    holds: createHoldsService({ db, clock, committer: credits.committer, authorization, defaultTtlSeconds: config.HOLD_DEFAULT_TTL_SECONDS }),
    forecasts: createDepletionForecasts({ db, clock, horizonHours: config.DEPLETION_FORECAST_HOURS, mandate }),
    exophones: createExophonesService({ db, clock }),
    authorization,
    catalog: createCatalogService({ db, clock, findAccount: accountsRepo.findAccount }),
    accounts: createAccountsService({ db, clock, taxation, trialWhitelistLimit: config.TRIAL_WHITELIST_LIMIT, testClocksEnabled: config.TEST_CLOCKS_ENABLED, accountChanged }),
    billing: createBillingService({ db, clock, taxation }),
    creditNotes: createCreditNotesService({ db, clock, provider, logger, accountChanged }),
    upgrades: createUpgradeService({
      db,
      clock,
      provider,
      logger,
      taxation,
      invoiceDueDays: config.INVOICE_DUE_DAYS,
      mandate,
      payments,
      accountChanged,
    }),
  };
}

export type Services = ReturnType<typeof createServices>;
