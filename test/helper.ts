import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Test } from 'tap';
import { buildApp } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { createPostgresPool, migratePostgres, migrationsFolder, postgresDatabase, type Database } from '../src/db/client.js';
import { connectRedis } from '../src/infra.js';
import { fixedClock } from '../src/lib/clock.js';
import { createLogger, loggerOptions, type Logger } from '../src/lib/logger.js';
import { pino, type DestinationStream } from 'pino';
import { closeQueues, createQueues, type Queues } from '../src/jobs/registry.js';
import type { Scope } from '../src/modules/auth/domain.js';
import { createServices, type Services } from '../src/services.js';
import { mastersOf, type RedisClient } from '../src/lib/redis.js';

export const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A fresh, migrated database of its own for one test; dropped at teardown. */
export async function createTestDatabase(t: Test): Promise<string> {
  const { url, drop } = await makeTestDatabase();
  t.teardown(drop);
  return url;
}

/** Names of the databases tests make: TEST_DATABASE_PREFIX keeps two checkouts (or CI and a developer) apart on one server. */
export const prefix = process.env.TEST_DATABASE_PREFIX ?? 'billing_test';
const urlOf = (name: string) => adminUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A migrated template, made once per set of migrations (its name carries their hash) and
 * cloned by every test: CREATE DATABASE ... TEMPLATE copies files, far faster than running
 * the migrations again. Built under a temporary name and renamed when complete, so a test
 * never clones a half-migrated template, and two test processes building at once both end
 * up using one.
 */
let template: Promise<string> | undefined;
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const hash = createHash('sha256');
    for (const file of readdirSync(migrationsFolder).filter((f) => f.endsWith('.sql')).sort()) hash.update(file).update(readFileSync(join(migrationsFolder, file)));
    const name = `${prefix}_tpl_${hash.digest('hex').slice(0, 12)}`;
    const exists = async () => (await admin((c) => c.query('select 1 from pg_database where datname = $1', [name]))).rowCount === 1;
    if (await exists()) return name;
    const building = `${name}_b${randomBytes(3).toString('hex')}`;
    await admin((c) => c.query(`create database ${building}`));
    await migratePostgres(urlOf(building));
    try {
      await admin((c) => c.query(`alter database ${building} rename to ${name}`));
    } catch (err) {
      // Another process finished first: use its template.
      await admin((c) => c.query(`drop database if exists ${building} with (force)`));
      if (!(await exists())) throw err;
    }
    return name;
  })();
  return template;
}

async function cloneTemplate(): Promise<string> {
  const from = await migratedTemplate();
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await admin(async (c) => {
        await c.query(`create database ${name} template ${from}`);
        // A test needs no commit to survive a crash of Postgres itself: commits return without
        // waiting for the disk (same answers, same locks, same isolation).
        await c.query(`alter database ${name} set synchronous_commit = off`);
      });
      return name;
    } catch (err) {
      // Another clone of the template is being made this instant: Postgres allows one at a time.
      if (!/being accessed by other users/.test((err as Error).message) || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
  }
}

/**
 * A clone costs Postgres about 0.3 s of CPU to make and 0.2 s to drop (it copies and later
 * removes every file of the template, catalogs included), and every new connection about 30 ms
 * more, then a few ms for each table it first touches (its catalog caches start empty): more
 * than most tests take. So a database a test of this process has finished with is emptied and
 * handed to the next test with its connections: every row deleted and the catalog's rows put
 * back, sequences restarted, in one transaction of a few milliseconds. Only a database whose
 * schema is still the template's (same relations, triggers in the same state, same functions
 * and settings) and whose connections all came back is reused; any other is dropped. Each test
 * sees the shared pools through views of its own (`poolView`): once its teardown has ended them
 * they refuse that test's queries, so nothing a test left running writes into the next one's
 * data. The test process drops what is left at its end.
 */
interface Snapshot {
  /** The schema's fingerprint, as the template has it. */
  signature: string;
  /** One script that puts a database of that schema back as the template has it. */
  reset: string;
}

/** A test database and the connections kept open to it from one test to the next. */
interface Pooled {
  name: string;
  /** What the service's code runs on (the size the tests always gave it). */
  app: pg.Pool;
  /** ctx.query's, and the reset's. */
  sql: pg.Pool;
}

const signatureSql = `select md5(string_agg(x, ',' order by x)) as signature from (
  select 'c:' || n.nspname || '.' || c.relname || ':' || c.relkind::text as x from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
  union all select 't:' || tgrelid::regclass::text || '.' || tgname || ':' || tgenabled::text from pg_trigger where not tgisinternal
  union all select 'f:' || p.oid::regprocedure::text || ':' || md5(p.prosrc) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
  union all select 's:' || array_to_string(setconfig, ',') from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = current_database())
) s`;

/** Read from a fresh clone, before its test has it: what a reset must restore. */
async function takeSnapshot(sql: pg.Pool): Promise<Snapshot> {
  const { signature } = (await sql.query(signatureSql)).rows[0];
  const tables: string[] = (await sql.query(`select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition order by 1`)).rows.map((r) => r.name);
  const lines = ['begin', "set local session_replication_role = 'replica'"]; // no triggers: append-only guards and change notices stay out of it
  for (const table of tables) {
    lines.push(`delete from ${table}`);
    const rows = (await sql.query(`select coalesce(json_agg(t), '[]') as rows from ${table} t`)).rows[0].rows;
    if (rows.length) lines.push(`insert into ${table} select * from json_populate_recordset(null::${table}, ${pg.escapeLiteral(JSON.stringify(rows))})`);
  }
  for (const s of (await sql.query(`select format('%I.%I', schemaname, sequencename) as name, last_value, start_value from pg_sequences where schemaname = 'public'`)).rows) {
    lines.push(s.last_value === null ? `select setval(${pg.escapeLiteral(s.name)}, ${s.start_value}, false)` : `select setval(${pg.escapeLiteral(s.name)}, ${s.last_value}, true)`);
  }
  lines.push('commit');
  return { signature, reset: lines.join(';\n') };
}

let snapshot: Promise<Snapshot> | undefined;
const reusable: Pooled[] = [];
const unfinished = new Set<Promise<unknown>>();
const track = <T>(p: Promise<T>): Promise<T> => {
  const settled = p.then(
    () => undefined,
    () => undefined,
  );
  unfinished.add(settled);
  void settled.then(() => unfinished.delete(settled));
  return p;
};
const dropDatabase = (name: string) => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined);
const quiet = createLogger({ LOG_LEVEL: 'silent' } as Config);

function openPools(name: string): Pooled {
  const sql = new pg.Pool({ connectionString: urlOf(name), max: 2 });
  sql.on('error', () => {}); // a test that terminates backends, or the drop at the end
  return { name, app: createPostgresPool(urlOf(name), 5, quiet), sql };
}

/** Drops a database and ends its pools (not waited for: a client the test never released would hold them open). */
function discard(pooled: Pooled): void {
  void track(dropDatabase(pooled.name)).catch(() => {});
  for (const pool of [pooled.app, pooled.sql]) void pool.end().catch(() => {});
}

/**
 * A test's view of a shared pool: the pool's own methods and state, but `end()` only closes the
 * view, after which its queries and checkouts are refused.
 */
function poolView(pool: pg.Pool): pg.Pool {
  let open = true;
  const ended = () => Promise.reject(new Error('this test has ended: its database now belongs to the next test'));
  const view = Object.create(pool) as pg.Pool;
  Object.assign(view, {
    connect: (...args: unknown[]) => (open ? (pool.connect as (...a: unknown[]) => unknown)(...args) : ended()),
    query: (...args: unknown[]) => (open ? (pool.query as (...a: unknown[]) => unknown)(...args) : ended()),
    end: async () => {
      open = false;
    },
  });
  return view;
}

/** Empties a finished test's database for the next one; false when it cannot be (a connection still out, the schema changed). */
async function resetDatabase(pooled: Pooled): Promise<boolean> {
  if (!snapshot) return false;
  if ([pooled.app, pooled.sql].some((p) => p.totalCount !== p.idleCount || p.waitingCount > 0)) return false;
  try {
    const { signature, reset } = await snapshot;
    if ((await pooled.sql.query(signatureSql)).rows[0].signature !== signature) return false;
    await pooled.sql.query(reset);
    return true;
  } catch {
    return false;
  }
}

let cleanupRegistered = false;
function registerCleanup(): Promise<void> | void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  return import('tap').then(({ default: tap }) => {
    tap.teardown(async () => {
      for (const pooled of reusable.splice(0)) discard(pooled);
      while (unfinished.size) await Promise.all([...unfinished]);
    });
  });
}

/** A fresh clone of the template, dropped when the test gives it back. */
async function makeTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  await registerCleanup();
  const name = await cloneTemplate();
  return { url: urlOf(name), drop: async () => void track(dropDatabase(name)).catch(() => {}) };
}

/** A database for setup(): one a test of this process finished with, or a fresh clone. */
async function takePooledDatabase(): Promise<{ url: string; app: pg.Pool; sql: pg.Pool; release(): Promise<void> }> {
  await registerCleanup();
  let pooled = reusable.pop();
  if (!pooled) {
    pooled = openPools(await cloneTemplate());
    snapshot ??= takeSnapshot(pooled.sql);
    await snapshot;
  }
  const used = pooled;
  const release = async () => {
    if (await resetDatabase(used)) reusable.push(used);
    else discard(used);
  };
  return { url: urlOf(used.name), app: poolView(used.app), sql: poolView(used.sql), release };
}

export interface TestContext {
  app: FastifyInstance;
  config: Config;
  database: Database;
  redis: RedisClient;
  queues: Queues;
  services: Services;
  clock: ReturnType<typeof fixedClock>;
  keys: Record<'ops' | 'read' | 'write' | 'kyc', string>;
  /** A key with these scopes, bound to an account when one is given. */
  key(scopes: Scope[], accountId?: string): Promise<string>;
  /** For a test that breaks the ledger on purpose: skip the invariants check at its end. */
  allowLedgerViolations(): void;
  /** Raw SQL against the test database, for assertions on what was written. */
  query(text: string, params?: unknown[]): Promise<pg.QueryResult<any>>;
  /** app.inject with a bearer key and JSON body. */
  call(method: InjectOptions['method'], url: string, opts?: { key?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
}

/**
 * The same app as production, on real Postgres and Redis, with a database and a queue
 * prefix of its own so test files can run in parallel.
 */
export async function setup(t: Test, env: Record<string, string> = {}, opts: { logTo?: NodeJS.WritableStream } = {}): Promise<TestContext> {
  const { url, app: appPool, sql: sqlPool, release } = await takePooledDatabase();
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: process.env.TEST_LOG ?? 'silent', QUEUE_PREFIX: `${process.env.TEST_REDIS_PREFIX ?? 'bt'}-${randomBytes(4).toString('hex')}`, REDIS_URL: redisUrl, RATE_LIMIT_PER_MINUTE: '100000', AUTH_FAILURES_PER_MINUTE: '100000', ...env });
  const logger = opts.logTo ? (pino(loggerOptions(config), opts.logTo as DestinationStream) as unknown as Logger) : createLogger(config);
  const database = postgresDatabase(url, appPool);
  // On a cluster the config puts the prefix in a hash tag: use it as parsed.
  const prefix = config.QUEUE_PREFIX;
  const redis = await connectRedis(config.REDIS_URL);
  const queues = createQueues(redis, prefix);
  const clock = fixedClock(new Date('2026-11-26T10:00:00Z'));
  const app = await buildApp({ config, logger, database, redis, clock, queues });
  const services = createServices({ config, database, clock });

  let checkLedger = true;
  t.teardown(async () => {
    let report: { violations: unknown[] } = { violations: [] };
    try {
      // Every scenario ends with the ledger's invariants holding (a throw here fails the test).
      if (checkLedger) report = await services.credits.checkInvariants();
      await app.close();
      await closeQueues(queues);
      await deleteKeys(redis, prefix);
      await redis.quit();
    } finally {
      await database.close();
      await sqlPool.end();
      await release(); // reused only if every connection came back
    }
    if (report.violations.length) throw new Error(`ledger invariants broken: ${JSON.stringify(report.violations)}`);
  });

  const key = async (scopes: Scope[], accountId?: string) => (await services.auth.createApiKey({ name: 'test', scopes, accountId })).key;
  const [ops, read, write, kyc] = await Promise.all([key(['ops']), key(['read']), key(['write']), key(['kyc'])]);
  const keys = { ops, read, write, kyc };

  const call: TestContext['call'] = async (method, url, opts = {}) => {
    const key = opts.key === undefined ? keys.ops : opts.key;
    const res = await app.inject({
      method,
      url,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
    });
    let body: unknown = res.body;
    try {
      body = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body, headers: res.headers };
  };

  // Raw SQL is a write by "another process": wait until the api has heard of it (the change
  // feed's barrier), so a test's next request never races the notification.
  const query = async (text: string, params?: unknown[]) => {
    const result = await sqlPool.query(text, params);
    if (/^\s*(update|insert|delete|truncate|begin)\b/i.test(text)) await app.changes.sync();
    return result;
  };
  const allowLedgerViolations = () => {
    checkLedger = false;
  };
  return { app, config, database, redis, queues, services, clock, keys, key, call, query, allowLedgerViolations };
}

/**
 * A queue prefix for service processes a test starts itself (TEST_REDIS_PREFIX, then the tag
 * and a random part), whose keys are deleted at the test's end.
 */
export function ownQueuePrefix(t: Test, tag: string): string {
  const prefix = `${process.env.TEST_REDIS_PREFIX ?? 'bt'}-${tag}-${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await deleteKeys(redis, prefix);
    } catch {
      // no Redis here (a test of starting without one): nothing was written
    } finally {
      redis.disconnect();
    }
  });
  return prefix;
}

/** Deletes every key under a queue prefix (one hash slot on a cluster too: the prefix is its hash tag). */
async function deleteKeys(redis: RedisClient, prefix: string): Promise<void> {
  const keys = await scanKeys(redis, `${prefix}:*`);
  if (keys.length) await redis.del(...keys);
}

/** Every key matching a pattern, on every master of a cluster (a SCAN sees one server's keys). */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const server of mastersOf(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
  }
  return found;
}

/** Creates a trial account through the API and returns its body. */
export async function createAccount(ctx: TestContext, body: Partial<{ name: string; email: string; country: string }> = {}) {
  const res = await ctx.call('POST', '/v1/accounts', {
    body: { name: 'Acme Telecom', email: 'billing@acme.example', country: 'IN', ...body },
  });
  if (res.status !== 201) throw new Error(`account creation answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as { id: string; currency: string; status: string; kyc: { status: string } };
}

export async function approveKyc(ctx: TestContext, accountId: string) {
  for (const status of ['submitted', 'approved']) {
    const res = await ctx.call('PUT', `/v1/accounts/${accountId}/kyc`, { key: ctx.keys.kyc, body: { status } });
    if (res.status !== 200) throw new Error(`kyc ${status}: ${res.status}`);
  }
}

/** An account in trial with KYC approved: ready to upgrade. */
export async function readyAccount(ctx: TestContext, body: Partial<{ name: string; email: string; country: string }> = {}) {
  const account = await createAccount(ctx, body);
  await approveKyc(ctx, account.id);
  return account;
}

/**
 * Every event in the outbox relayed and its job done (emails sent, webhooks queued): past
 * this point nothing already committed can send another email. A test proves "no second
 * email" by reaching it, not by sleeping.
 */
export async function allEventsHandled(ctx: TestContext): Promise<boolean> {
  return (await ctx.query('select count(*)::int as n from outbox where handled_at is null')).rows[0].n === 0;
}

/** Row counts of everything an upgrade may write, to prove a refusal wrote nothing. */
export async function writeCounts(ctx: TestContext): Promise<Record<string, number>> {
  const tables = ['payments', 'payment_methods', 'invoices', 'invoice_lines', 'subscriptions', 'credit_ledger', 'credit_balances', 'auto_recharge_settings', 'outbox', 'sandbox_charges', 'invoice_number_sequences'];
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = (await ctx.query(`select count(*)::int as n from ${table}`)).rows[0].n;
  return counts;
}

/** Runs every outbox event through the event dispatcher with a mailer for this SMTP url. */
export async function deliverEvents(ctx: TestContext, smtpUrl: string): Promise<Array<Record<string, unknown>>> {
  const { createEventDispatcher } = await import('../src/jobs/dispatch-event.js');
  const { createSmtpMailer } = await import('../src/modules/notifications/mailer.js');
  const { createNotificationsService } = await import('../src/modules/notifications/service.js');
  const mailer = createSmtpMailer(smtpUrl, 'Billing <billing@test.example>');
  try {
    const { creditNotePdfById } = await import('../src/modules/credit-notes/documents.js');
    const notifications = createNotificationsService({ db: ctx.database.db, clock: ctx.clock, mailer, creditNotePdf: creditNotePdfById(ctx.database.db, ctx.clock) });
    const dispatch = createEventDispatcher({ db: ctx.database.db, notifications });
    const { rows } = await ctx.query('select id, event_id, type from outbox order by id');
    const outcomes = [];
    for (const row of rows) {
      outcomes.push(await dispatch({ data: { outboxId: Number(row.id), eventId: row.event_id, type: row.type } } as never));
    }
    return outcomes;
  } finally {
    mailer.close();
  }
}

/** An active Starter account (INR: 60 paise a pulse, 25 a segment) with exactly `balance` credits. */
export async function paidAccount(ctx: TestContext, balance: number, overrides: Record<string, unknown> = {}, accountBody: Partial<{ name: string; email: string; country: string }> = {}) {
  const account = await readyAccount(ctx, { country: 'IN', ...accountBody });
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' }, ...overrides },
    headers: { 'idempotency-key': `up-${account.id}` },
  });
  if (res.status !== 201) throw new Error(`upgrade ${res.status}`);
  if (balance !== 100000) {
    await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, {
      body: { amount: balance - 100000, reason: 'test setup' },
      headers: { 'idempotency-key': `adj-${account.id}` },
    });
  }
  return account;
}

/** The text of a PDF, as pdf.js extracts it (what a reader copies, a search finds). */
export async function pdfText(data: Buffer): Promise<string> {
  const { PDFParse } = await import('pdf-parse');
  const parser = new PDFParse({ data });
  try {
    return (await parser.getText()).text;
  } finally {
    await parser.destroy();
  }
}
