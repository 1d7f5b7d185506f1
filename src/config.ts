import { z } from 'zod';
import { checkGstin } from './lib/gstin.js';
import type { Taxation } from './modules/billing/tax.js';
import { developmentKeyRing, parseKeyRing, type SecretKey } from './lib/secret-box.js';
import { parseRetention } from './db/retention.js';
import { isClusterUrl, parseClusterUrl, withHashTag } from './lib/redis.js';

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL');

/**
 * The whole environment of the service, parsed once at boot. Every knob an operator may
 * turn lives here; nothing else reads process.env.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Postgres; when unset the service runs on an embedded PGlite database under DATA_DIR. */
  DATABASE_URL: postgresUrl.optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * One Redis (redis://, rediss:// for TLS), or a Redis Cluster given by some of its nodes:
   * redis+cluster://[user:password@]host:port,host:port (rediss+cluster:// for TLS).
   */
  REDIS_URL: z
    .string()
    .regex(/^rediss?(\+cluster)?:\/\//, 'must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL')
    .superRefine((url, ctx) => {
      const parsed = isClusterUrl(url) ? parseClusterUrl(url) : null;
      if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
    })
    .default('redis://127.0.0.1:6379'),
  /**
   * The prefix of every key of the service in Redis (queues, rate limits, job statistics). On
   * a cluster it is used with a hash tag: `billing` becomes `{billing}` (see withHashTag).
   */
  QUEUE_PREFIX: z.string().min(1).default('billing'),
  /** smtp://user:pass@host:port; unset in development logs emails instead of sending them. */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  MAIL_FROM: z.string().min(3).default('Billing <billing@localhost>'),
  /**
   * Keys that encrypt secrets at rest (webhook signing secrets) and pepper API key hashes:
   * `kid:base64key` pairs of 32-byte keys; the first seals, all open. Required in production;
   * unset elsewhere, a public development key is used (and a warning logged).
   */
  SECRETS_KEYS: z
    .string()
    .transform((v, ctx) => {
      const ring = parseKeyRing(v);
      if (typeof ring === 'string') {
        ctx.addIssue({ code: 'custom', message: ring });
        return z.NEVER;
      }
      return Object.freeze(ring);
    })
    .optional(),
  /** Accepted as an ops key from the first start on (stored hashed like any other key). */
  BOOTSTRAP_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  TRIAL_WHITELIST_LIMIT: z.coerce.number().int().min(1).max(100).default(5),
  /** Run migrations at start-up. On by default only for the embedded database. */
  MIGRATE_ON_START: bool.optional(),
  OUTBOX_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** Tax per billing country in basis points, `CC:bps` pairs: IN:1800 is GST 18%. */
  TAX_RATES: z
    .string()
    .regex(/^([A-Z]{2}:\d{1,4})(,[A-Z]{2}:\d{1,4})*$/, 'must be CC:bps pairs such as IN:1800,US:0')
    .default('IN:1800')
    .transform((v) => Object.fromEntries(v.split(',').map((pair) => [pair.slice(0, 2), Number(pair.slice(3))])) as Record<string, number>),
  /** Days an open invoice (wire transfer, cheque) has until it is due. */
  INVOICE_DUE_DAYS: z.coerce.number().int().min(1).max(120).default(15),
  /** Days after a failed renewal charge to retry it; after the last, the subscription ends. */
  DUNNING_RETRY_DAYS: z
    .string()
    .regex(/^\d{1,3}(,\d{1,3})*$/, 'must be days such as 1,3,7')
    .default('1,3,7')
    .transform((v) => v.split(',').map(Number)),
  /**
   * Indian e-mandate rules for unattended card and UPI charges (renewals, auto-recharge):
   * the most one such charge may take, in paise, and the pre-debit notice sent before it.
   */
  MANDATE_CAP_INR: z.coerce.number().int().min(0).default(1_500_000),
  PRE_DEBIT_NOTICE_HOURS: z.coerce.number().int().min(0).max(240).default(24),
  /** Auto-recharge switches itself off after this many failed charges in a row. */
  AUTO_RECHARGE_MAX_FAILURES: z.coerce.number().int().min(1).max(20).default(3),
  /** Minutes before retrying a failed auto-recharge; doubles with each failure. */
  AUTO_RECHARGE_RETRY_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  /**
   * Low-balance alerts: the available balance, in minor units, under which an account without
   * its own threshold hears credits.low_balance once (₹500 and $5 by default).
   */
  LOW_BALANCE_THRESHOLD_INR: z.coerce.number().int().min(0).default(50_000),
  LOW_BALANCE_THRESHOLD_USD: z.coerce.number().int().min(0).default(500),
  /** credits.depletion_forecast goes out once when credits would run out within this many hours at the current rate of use. */
  DEPLETION_FORECAST_HOURS: z.coerce.number().int().min(1).max(24 * 90).default(168),
  /** How long a hold lasts when the caller gives no ttlSeconds: a crashed caller's holds are freed after it. */
  HOLD_DEFAULT_TTL_SECONDS: z.coerce.number().int().min(10).max(86_400).default(3_600),
  /**
   * Months of history kept per partitioned table, over the defaults (src/db/retention.ts):
   * e.g. `usage_events=6,credit_ledger=96`.
   * Whole months past it are dropped by the workers; a dropped ledger month is carried as a sum.
   */
  HISTORY_RETENTION_MONTHS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseRetention(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Hosts (or IPs) webhook URLs may point at although they are loopback or private: for tests and on-premise receivers. */
  WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)),
  /** Multiplies every webhook retry pause and queue lease: 1 in production; tiny in tests so a day of retries takes seconds. */
  WEBHOOK_RETRY_SCALE: z.coerce.number().min(0.000001).max(1).default(1),
  /** Hours a rotated-out webhook secret keeps signing beside the new one. */
  WEBHOOK_SECRET_GRACE_HOURS: z.coerce.number().int().min(0).max(720).default(24),
  /** Requests per minute per API key on /v1, shared by all api processes through Redis. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  /** The same for the hot paths the voice and SMS platform calls per call and message (authorize, usage). */
  RATE_LIMIT_HOT_PER_MINUTE: z.coerce.number().int().min(1).default(60_000),
  /**
   * Failed authentications (missing, malformed or unknown key) one client address may make a
   * minute, counted in memory per api process; past it, any key this process has not already
   * seen answers 429 without a database lookup.
   */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  /** Behind a proxy or load balancer: the client address is taken from X-Forwarded-For. */
  TRUST_PROXY: bool.default(false),
  /** Hours an operator's browser session on /admin (the queue board) lasts after signing in with an ops key. */
  ADMIN_SESSION_HOURS: z.coerce.number().int().min(1).max(24).default(8),
  /** Accounts whose authorization facts the api keeps in memory (about 1 KB each). */
  AUTHORIZE_CACHE_ACCOUNTS: z.coerce.number().int().min(0).max(1_000_000).default(50_000),
  /** Days a past_due account may still call and send while its renewal is retried. */
  PAST_DUE_GRACE_DAYS: z.coerce.number().int().min(0).max(60).default(3),
  /** How often the scheduler looks in Postgres for renewals and retries that fell due. */
  SCHEDULER_INTERVAL_MS: z.coerce.number().int().min(20).max(600_000).default(5000),
  /** A BullMQ worker that takes no job this long while its queue has jobs waiting is replaced (src/jobs/supervise.ts). */
  WORKER_STUCK_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  /** Stripe-style test clocks; never on in production. */
  TEST_CLOCKS_ENABLED: bool.default(false),
  /** Where emails go in development without SMTP_URL: one .eml file per email. */
  MAIL_DIR: z.string().min(1).optional(),
  /**
   * The seller on every tax invoice (GST Rule 46): legal name, address, GSTIN (its first two
   * digits are the seller's state), the SAC of what is sold, and the terms printed on an
   * export of services. Required in production; elsewhere an example seller in Karnataka.
   */
  SELLER_LEGAL_NAME: z.string().trim().min(2).max(200).optional(),
  SELLER_ADDRESS: z.string().trim().min(5).max(300).optional(),
  SELLER_GSTIN: z
    .string()
    .transform((v, ctx) => {
      const checked = checkGstin(v);
      if (!checked.ok) {
        ctx.addIssue({ code: 'custom', message: checked.problem });
        return z.NEVER;
      }
      return checked.gstin;
    })
    .optional(),
  /** Services Accounting Code; 998419 is "other telecommunications services". */
  SELLER_SAC: z.string().regex(/^99\d{4}$/, 'must be a 6-digit SAC starting with 99').default('998419'),
  EXPORT_TERMS: z
    .string()
    .trim()
    .min(10)
    .max(300)
    .default('Supply meant for export of services under Letter of Undertaking without payment of integrated tax'),
}).superRefine((env, ctx) => {
  // CGST and SGST split the Indian rate in two whole basis points.
  if ((env.TAX_RATES.IN ?? 0) % 2 !== 0) ctx.addIssue({ code: 'custom', path: ['TAX_RATES'], message: 'must give IN an even number of basis points (CGST and SGST take half each)' });
  // An offline invoice must be settled or written off before the next (monthly) one is issued.
  const lastRetry = Math.max(...env.DUNNING_RETRY_DAYS);
  if (env.INVOICE_DUE_DAYS + lastRetry >= 28) {
    ctx.addIssue({ code: 'custom', path: ['INVOICE_DUE_DAYS'], message: `plus the last dunning day (${lastRetry}) must stay under 28 days` });
  }
  // Production never runs on the embedded database nor drops emails into the log.
  if (env.NODE_ENV !== 'production') return;
  if (!env.DATABASE_URL) ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'is required when NODE_ENV=production' });
  if (!env.SMTP_URL) ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'is required when NODE_ENV=production' });
  if (!env.SECRETS_KEYS) {
    ctx.addIssue({ code: 'custom', path: ['SECRETS_KEYS'], message: 'is required when NODE_ENV=production (kid:base64key, a key from openssl rand -base64 32)' });
  }
  if (env.TEST_CLOCKS_ENABLED) {
    ctx.addIssue({ code: 'custom', path: ['TEST_CLOCKS_ENABLED'], message: 'must not be on when NODE_ENV=production' });
  }
  // A tax invoice names its real seller: no example seller in production.
  for (const name of ['SELLER_LEGAL_NAME', 'SELLER_ADDRESS', 'SELLER_GSTIN'] as const) {
    if (!env[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'is required when NODE_ENV=production (the seller printed on tax invoices)' });
  }
}).transform((env) => (isClusterUrl(env.REDIS_URL) ? { ...env, QUEUE_PREFIX: withHashTag(env.QUEUE_PREFIX) } : env));

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {}

/** Parses an environment; throws ConfigError with one readable line naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in most twelve-factor tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const got = env[name] === undefined ? 'it is not set' : `got ${JSON.stringify(redactValue(name, env[name]!))}`;
    const message = issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
    throw new ConfigError(`Invalid configuration: ${name}: ${message} (${got})`);
  }
  return Object.freeze(parsed.data);
}

function redactValue(name: string, value: string): string {
  if (/KEY|SECRET|PASSWORD|TOKEN/.test(name)) return '[redacted]';
  return value.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

export const usesEmbeddedDatabase = (config: Config): boolean => config.DATABASE_URL === undefined;

export const mailDirOf = (config: Config): string => config.MAIL_DIR ?? `${config.DATA_DIR}/mail`;

/** The key ring for secrets at rest: SECRETS_KEYS, or the public development key when unset. */
export const secretsKeysOf = (config: Config): readonly SecretKey[] => config.SECRETS_KEYS ?? developmentKeyRing;

export const migratesOnStart = (config: Config): boolean =>
  config.MIGRATE_ON_START ?? usesEmbeddedDatabase(config);

/** The example seller outside production: a private limited company in Karnataka. */
const exampleSeller = {
  legalName: 'Example Cloud Telephony Private Limited',
  address: '4th Floor, 100 Residency Road, Bengaluru, Karnataka 560025',
  gstin: '29AABCE1234F1Z1',
};

/** The seller and tax rates invoices are issued with. */
export function taxationOf(config: Config): Taxation {
  const gstin = config.SELLER_GSTIN ?? exampleSeller.gstin;
  return {
    rates: config.TAX_RATES,
    seller: {
      legalName: config.SELLER_LEGAL_NAME ?? exampleSeller.legalName,
      address: config.SELLER_ADDRESS ?? exampleSeller.address,
      gstin,
      stateCode: gstin.slice(0, 2),
      sac: config.SELLER_SAC,
      exportTerms: config.EXPORT_TERMS,
    },
  };
}
