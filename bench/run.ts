/**
 * npm run bench: the hot paths against baselines measured in the same run on this machine.
 * Starts a bare Fastify server and the api (child processes, on Postgres and Redis), seeds
 * 10,000 paid accounts, drives load with autocannon, checks the ledger afterwards, prints one
 * table and writes bench/results/latest.json. A fast run that broke money is a failed run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import pg from 'pg';
import { migratePostgres } from '../src/db/client.js';
import { developmentKeyRing } from '../src/lib/secret-box.js';
import { createKeyHasher, generateApiKey } from '../src/modules/auth/domain.js';
import { query as sql } from './pg.js';
import { deleteKeys, NODE_FLAGS, rawRenewalWave, renewalWave } from './renewals.js';

const ACCOUNTS = 10_000;
const CONNECTIONS = 64;
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const POOL = 10;
/** BENCH_ONLY=authorize,usage,batch,hot,holds,holdhot,renewals runs only those figures. */
const only = process.env.BENCH_ONLY?.split(',');
const want = (name: string) => !only || only.includes(name);
const admin = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = new URL('..', import.meta.url).pathname;
/** The one account of the one-account holds figure: a balance so large its callers never run out. */
const HOT_ACCOUNT = `acc_benchhot${'1'.padStart(18, '0')}`;
const HOT_BALANCE = 1_000_000_000_000;
/** Active holds the money checks settle with usage events, in batches of 500, each batch sent twice. */
const SETTLE_SAMPLE = 2000;
/** Events per batch of the batch ingest figure, the api's load and its raw baseline alike, and the api's callers. */
const BATCH_EVENTS = 500;
const BATCH_CONNECTIONS = 8;
/**
 * The raw batch baseline's batches in flight: one. Any two batches of 500 over 10,000 accounts
 * share accounts, so batches in flight queue on each other's row locks, and more of them only
 * lose time: raw batches measured 12,400 events/s one at a time, 10,900 two, 10,500 four,
 * 7,900 eight and 3,800 sixteen at a time (one 3 s run each, 2 cores, the machine busy with
 * another test run). The best of them is the bar.
 */
const BATCH_RAW_CONNECTIONS = 1;
/** Accounts the raw batch baseline writes to: its own, seeded like the api's, so the api's figures and checks do not see them. */
const RAW_ACCOUNT = (i: number) => `acc_benchraw${String(i).padStart(18, '0')}`;
/** BENCH_WAVES=1000,2000 for a quick check; the figures are of 10,000 and 100,000. */
const WAVES = (process.env.BENCH_WAVES ?? '10000,100000').split(',').map(Number);
if (WAVES.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_WAVES: counts of subscriptions, as 1000,2000 (got ${process.env.BENCH_WAVES})`);

interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  target: { of: 'ratio' | 'value'; op: '>=' | '<='; value: number };
}

const dbName = `billing_bench_${randomBytes(4).toString('hex')}`;
const dbUrl = admin.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
const children: ChildProcess[] = [];


/** Starts a server process and waits until `readyUrl` answers. */
async function start(args: string[], env: Record<string, string>, readyUrl: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    if (await fetch(readyUrl).then((r) => r.ok, () => false)) return child;
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function load(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, ...(opts.amount ? {} : { duration: DURATION }), ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** User and system CPU seconds of a process so far (/proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuOf(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** CPU seconds of all Postgres server processes on this machine (the bench's own database is the one busy). */
function postgresCpu(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      const cpu = cpuOf(Number(pid));
      total += cpu.user + cpu.system;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

const cpuNote = (what: string, before: { user: number; system: number }, after: { user: number; system: number }, requests: number) => {
  const per = (s: number) => `${((s * 1e6) / Math.max(requests, 1)).toFixed(0)} us`;
  return `${what}: api CPU per request ${per(after.user - before.user + after.system - before.system)} (user ${per(after.user - before.user)}, system ${per(after.system - before.system)})`;
};

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** The DB baseline: raw node-postgres transactions, UPDATE a balance + INSERT a ledger-like row. */
async function dbBaseline(rows: number, seconds: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: dbUrl, max: POOL });
  await pool.query('create table if not exists bench_balance (id int primary key, balance bigint not null); create table if not exists bench_ledger (id bigserial primary key, account int, amount bigint)');
  await pool.query('truncate bench_balance, bench_ledger');
  await pool.query('insert into bench_balance select g, 1000000000 from generate_series(1, $1) g', [rows]);
  let done = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < deadline) {
        const id = 1 + Math.floor(Math.random() * rows);
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('update bench_balance set balance = balance - 1 where id = $1', [id]);
          await client.query('insert into bench_ledger (account, amount) values ($1, -1)', [id]);
          await client.query('commit');
          done++;
        } finally {
          client.release();
        }
      }
    }),
  );
  await pool.end();
  return done / seconds;
}
/** `count` active Starter accounts in India named `<prefix><number padded to pad>`, each with 1,000,000 paise of credits (balance and its ledger entry).
 * The balance rows go to every account under the prefix: seed before any other account shares it. */
async function seedAccounts(prefix: string, pad: number, name: string, mail: string, count: number) {
  await sql(
    dbUrl,
    `insert into accounts (id, name, email, country, currency, status, kyc_status, plan_id, created_at, updated_at)
       select $2 || lpad(g::text, $3, '0'), $4 || ' ' || g, $5 || g || '@bench.example', 'IN', 'INR', 'active', 'approved', 'plan_starter_v1', now(), now()
       from generate_series(1, $1) g`,
    [count, prefix, pad, name, mail],
  );
  await sql(dbUrl, `insert into credit_balances select id, 'INR', 1000000, now() from accounts where id like $1 || '%'`, [prefix]);
  await sql(
    dbUrl,
    `insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
       select id, 'adjustment', 1000000, 'INR', 1000000, 'bench:' || id, 'bench seed', now() from accounts where id like $1 || '%'`,
    [prefix],
  );
}

/**
 * The batch ingest baseline: the rows the credit committer writes for a batch of debited SMS
 * events (src/modules/credits/committer.ts, its credits_write statement), written by hand on
 * node-postgres. Per batch of `perBatch` events, one transaction: the batch's balances locked
 * in id order (the committer locks its accounts in id order too; without it, concurrent
 * batches over the same accounts deadlock) and read, each event's balance after worked out,
 * then one statement of unnest arrays: the usage_events rows, the credit_ledger rows, and each
 * account's credit_balances row set to its new balance. `connections` batches in flight (see
 * BATCH_RAW_CONNECTIONS). Into the real tables (their indexes, foreign keys and triggers)
 * on accounts of its own, seeded as the api's are; the ledger check at the end of the run
 * covers them too. Left out, being the service's work and not the rows: reading the account,
 * its plan and rates, looking for duplicates, and the holds, auto-recharge and low-balance
 * parts of the statement (no rows for these events). Events per second.
 */
async function batchBaseline(accounts: number, perBatch: number, connections: number, seconds: number): Promise<number> {
  await seedAccounts('acc_benchraw', 18, 'Bench raw', 'r', accounts);
  // The Starter plan's SMS rate in India, as the api rates a one-segment SMS of these accounts.
  const rate = Number((await sql(dbUrl, `select per_sms_rate from plan_prices where plan_id = 'plan_starter_v1' and currency = 'INR'`)).rows[0].per_sms_rate);
  const pool = new pg.Pool({ connectionString: dbUrl, max: connections });
  let batches = 0;
  let n = 0;
  const started = Date.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < deadline) {
        const events = Array.from({ length: perBatch }, () => ({ id: `r${n++}`, account: RAW_ACCOUNT(1 + Math.floor(Math.random() * accounts)) }));
        const client = await pool.connect();
        try {
          await client.query('begin');
          const locked = await client.query({
            name: 'raw_lock_balances',
            text: 'select account_id, balance, held from credit_balances where account_id = any($1::text[]) order by account_id for update',
            values: [[...new Set(events.map((e) => e.account))]],
          });
          const balances = new Map(locked.rows.map((r: { account_id: string; balance: string; held: string }) => [r.account_id, { balance: Number(r.balance), held: Number(r.held) }]));
          const at = new Date().toISOString();
          const after = events.map((e) => {
            const b = balances.get(e.account)!;
            b.balance -= rate;
            return b.balance;
          });
          const moved = [...balances];
          await client.query({
            name: 'raw_write_batch',
            text: `with ev as (
                     insert into usage_events (id, account_id, type, units, amount, status, reason, balance_after, created_at, hold_id, shortfall)
                     select * from unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::timestamptz[], $10::text[], $11::bigint[])
                   ), le as (
                     insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
                     select l.account_id, 'usage', l.amount, l.currency::currency, l.balance_after, l.source_key, l.description, l.created_at
                     from unnest($12::text[], $13::bigint[], $14::text[], $15::bigint[], $16::text[], $17::text[], $18::timestamptz[])
                       as l(account_id, amount, currency, balance_after, source_key, description, created_at)
                   )
                   update credit_balances b set balance = m.balance, held = m.held, updated_at = m.at
                   from unnest($19::text[], $20::bigint[], $21::bigint[], $22::timestamptz[]) as m(account_id, balance, held, at)
                   where b.account_id = m.account_id`,
            // The committer's arrays, one per column: the event rows, the ledger rows, the balances moved.
            values: [
              events.map((e) => e.id),
              events.map((e) => e.account),
              events.map(() => 'sms'),
              events.map(() => 1),
              events.map(() => rate),
              events.map(() => 'debited'),
              events.map(() => null),
              after,
              events.map(() => at),
              events.map(() => null),
              events.map(() => 0),
              events.map((e) => e.account),
              events.map(() => -rate),
              events.map(() => 'INR'),
              after,
              events.map((e) => `usage:${e.account}:${e.id}`),
              events.map(() => 'sms, 1 segment'),
              events.map(() => at),
              moved.map(([id]) => id),
              moved.map(([, b]) => b.balance),
              moved.map(([, b]) => b.held),
              moved.map(() => at),
            ],
          });
          await client.query('commit');
          batches++;
        } catch (err) {
          await client.query('rollback').catch(() => {});
          throw err;
        } finally {
          client.release();
        }
      }
    }),
  );
  // Until the last batch committed: one started just before the deadline counts whole.
  const elapsed = (Date.now() - started) / 1000;
  await pool.end();
  return (batches * perBatch) / elapsed;
}

/** New holds answered (201); a refusal or a duplicate answers 200, an error non-2xx. */
const grantedOf = (r: autocannon.Result) => r.statusCodeStats?.['201']?.count ?? 0;
/** Granted holds per second: the load's requests per second, counting only the granted ones. */
const grantedPerSecond = (r: autocannon.Result) => r.requests.average * Math.min(grantedOf(r) / Math.max(r.requests.total, 1), 1);
const notGranted = (r: autocannon.Result) => {
  const other = r.statusCodeStats?.['200']?.count ?? 0;
  return other === 0 ? '' : ` (${other} not granted)`;
};

/** One DB baseline per number of rows a run: the usage and the holds figures share it. */
const baselines = new Map<number, Promise<number>>();
const dbBaselineOnce = (rows: number, seconds: number) => {
  if (!baselines.has(rows)) baselines.set(rows, dbBaseline(rows, seconds));
  return baselines.get(rows)!;
};

async function main() {
  await sql(admin, `create database ${dbName}`);
  try {
    await migratePostgres(dbUrl);
    // 10,000 active Starter accounts in India, each with 1,000,000 paise of credits.
    await seedAccounts('acc_bench', 21, 'Bench', 'b', ACCOUNTS);
    // One more, for holds on one account: 10^12 paise, with its ledger entry, so the invariants hold.
    await sql(
      dbUrl,
      `insert into accounts (id, name, email, country, currency, status, kyc_status, plan_id, created_at, updated_at)
         values ($1, 'Bench hot', 'hot@bench.example', 'IN', 'INR', 'active', 'approved', 'plan_starter_v1', now(), now())`,
      [HOT_ACCOUNT],
    );
    await sql(dbUrl, `insert into credit_balances (account_id, currency, balance, updated_at) values ($1, 'INR', $2, now())`, [HOT_ACCOUNT, HOT_BALANCE]);
    await sql(
      dbUrl,
      `insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at) values ($1, 'adjustment', $2, 'INR', $2, 'bench:' || $1, 'bench seed', now())`,
      [HOT_ACCOUNT, HOT_BALANCE],
    );
    const { key, prefix } = generateApiKey();
    // The api runs without SECRETS_KEYS here: hashed as it will hash it, under the development key.
    const { hash, hashKid } = createKeyHasher(developmentKeyRing).hash(key);
    await sql(dbUrl, `insert into api_keys (id, name, prefix, hash, hash_kid, scopes, created_at) values ('key_bench', 'bench', $1, $2, $3, '{ops}', now())`, [prefix, hash, hashKid]);
    const accountIds = Array.from({ length: ACCOUNTS }, (_, i) => `acc_bench${String(i + 1).padStart(21, '0')}`);
    const pick = () => accountIds[Math.floor(Math.random() * ACCOUNTS)]!;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    const barePort = 4100 + Math.floor(Math.random() * 500);
    const apiPort = barePort + 600;
    const bareServer = await start(['--import', 'tsx', 'bench/bare.ts'], { PORT: String(barePort) }, `http://127.0.0.1:${barePort}/hello`);
    // The built service, as production runs it; BENCH_PROFILE=dir writes a CPU profile of it.
    const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [];
    const api = await start(
      [...profile, ...NODE_FLAGS, 'dist/server.js'],
      {
      DATABASE_URL: dbUrl,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info', // production's default: the hot routes write no request lines at it
      QUEUE_PREFIX: `bench-${dbName}`,
      DATABASE_POOL_SIZE: String(POOL),
      RATE_LIMIT_PER_MINUTE: '100000000',
      RATE_LIMIT_HOT_PER_MINUTE: '100000000',
      NODE_ENV: 'development',
      },
      `http://127.0.0.1:${apiPort}/healthz`,
    );

    const ok = (r: autocannon.Result) => (r.non2xx === 0 && r.errors === 0 ? '' : ` (${r.non2xx} non-2xx, ${r.errors} errors)`);
    const figures: Figure[] = [];
    /** What each figure's baseline is, for the table (latest.json keeps its format: the notes say it there). */
    const baselineIs = new Map<Figure, string>();
    const figure = (f: Figure, baselineWhat?: string) => {
      figures.push(f);
      if (baselineWhat) baselineIs.set(f, baselineWhat);
    };
    const notes: string[] = [];
    let n = 0;
    const usageLoad = (connections: number, events: () => object[]) =>
      load({ url: `http://127.0.0.1:${apiPort}`, connections, requests: [{ method: 'POST', path: '/v1/usage', headers, setupRequest: (req) => ({ ...req, body: JSON.stringify({ events: events() }) }) }] });

    // Warm-up, not measured: each account once, as a running api has them in memory (authorize's facts, which holds use too).
    let warm = false;
    const warmUp = async () => {
      if (warm) return;
      warm = true;
      const all = [...accountIds, HOT_ACCOUNT];
      let next = 0;
      await load({
        url: `http://127.0.0.1:${apiPort}`,
        amount: all.length,
        requests: [{ method: 'POST', headers, setupRequest: (req) => ({ ...req, path: `/v1/accounts/${all[next++ % all.length]}/authorize`, body: JSON.stringify({ action: 'outbound_call', destination: '+14155550123' }) }) }],
      });
    };

    if (want('authorize')) {
      const bareCpu = cpuOf(bareServer.pid!);
      const bare = await load({ url: `http://127.0.0.1:${barePort}/hello` });
      notes.push(cpuNote('bare Fastify', bareCpu, cpuOf(bareServer.pid!), bare.requests.total).replace('api ', 'server '));
      await warmUp();
      const cpuBefore = cpuOf(api.pid!);
      const authorize = await load({
        url: `http://127.0.0.1:${apiPort}`,
        requests: [
          {
            method: 'POST',
            headers,
            setupRequest: (req) => ({ ...req, path: `/v1/accounts/${pick()}/authorize`, body: JSON.stringify({ action: 'outbound_call', destination: '+14155550123' }) }),
          },
        ],
      });
      notes.push(cpuNote('authorize', cpuBefore, cpuOf(api.pid!), authorize.requests.total));
      // Half of bare Fastify for now; 0.8 is the next step (issue 17).
      figure(
        { name: `authorize req/s over ${ACCOUNTS} accounts${ok(authorize)}`, value: authorize.requests.average, unit: 'req/s', baseline: bare.requests.average, target: { of: 'ratio', op: '>=', value: 0.5 } },
        `bare Fastify GET /hello, ${CONNECTIONS} conns`,
      );
      notes.push('authorize req/s: target 0.5 of bare Fastify in the same run; 0.8 is the next step');
      // The p99 of a closed loop of CONNECTIONS callers is mostly queueing: latency ~ callers / throughput (Little's law), so
      // at the 0.5 throughput target authorize's latency is about twice bare Fastify's. At most 2.0 times bare's p99 then
      // asks no more than the throughput target does, and that the tail be no fatter than bare's: no stalls (GC, a cache
      // miss waiting on Postgres) beyond what the bare server shows on this machine at that moment. (autocannon gives whole
      // milliseconds: with bare's p99 at 3 ms the ratio moves in steps of a third.)
      figure(
        { name: 'authorize p99', value: authorize.latency.p99, unit: 'ms', baseline: bare.latency.p99, target: { of: 'ratio', op: '<=', value: 2.0 } },
        'bare Fastify p99, same load',
      );
      // What the heap holds after the load: V8's young generation is most of an api's RSS unless capped (NODE_FLAGS).
      const metrics = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers })).text();
      const space = (name: string) => Math.round(Number(new RegExp(`^nodejs_heap_space_size_total_bytes\\{space="${name}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0) / 2 ** 20);
      notes.push(`api heap after the authorize load: new space ${space('new')} MB, old space ${space('old')} MB (node ${NODE_FLAGS.join(' ')})`);
      figure({ name: 'api peak RSS under authorize load', value: peakRss(api.pid!), unit: 'MB', baseline: null, target: { of: 'value', op: '<=', value: 200 } });
    }
    /** A load on the credit committer (usage events, holds), with the api's CPU per op and ops per transaction noted. */
    const measured = async (what: string, op: string, perRequest: number, run: () => Promise<autocannon.Result>) => {
      const before = { cpu: cpuOf(api.pid!), stats: await usageStats(), postgres: postgresCpu() };
      const result = await run();
      const stats = await usageStats();
      const eventsDone = result.requests.total * perRequest;
      // Approximate: a Postgres process that ended during the load takes its CPU time with it.
      const pgSeconds = postgresCpu() - before.postgres;
      const postgres = pgSeconds > 0 ? `Postgres CPU per ${op} ${((pgSeconds * 1e6) / Math.max(eventsDone, 1)).toFixed(0)} us` : `Postgres CPU per ${op} n/a`;
      const perTx = `${((stats.events - before.stats.events) / Math.max(stats.transactions - before.stats.transactions, 1)).toFixed(1)} ${op}s per transaction`;
      notes.push(`${cpuNote(what, before.cpu, cpuOf(api.pid!), eventsDone).replace('request', op)}; ${postgres}; ${perTx}`);
      return result;
    };
    /** A usage load, with the api's CPU per event and events per transaction noted. */
    const measuredUsage = (what: string, connections: number, perRequest: number, events: () => object[]) => measured(what, 'event', perRequest, () => usageLoad(connections, events));
    const usageStats = async () => {
      const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers: { authorization: headers.authorization } })).text();
      const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return { transactions: read('billing_usage_transactions_total'), events: read('billing_usage_events_total') };
    };
    const usage = want('usage') ? await measuredUsage('single-event usage', CONNECTIONS, 1, () => [{ id: `u${n++}`, accountId: pick(), type: 'sms', segments: 1 }]) : null;
    const batch = want('batch')
      ? await measuredUsage('batch usage', BATCH_CONNECTIONS, BATCH_EVENTS, () => Array.from({ length: BATCH_EVENTS }, () => ({ id: `b${n++}`, accountId: pick(), type: 'sms', segments: 1 })))
      : null;
    const hot = want('hot') ? await measuredUsage('one-account usage', CONNECTIONS, 1, () => [{ id: `h${n++}`, accountId: HOT_ACCOUNT, type: 'sms', segments: 1 }]) : null;
    // Holds: an SMS of one segment each, a new reference each time, so every answer should be a new hold (201).
    const holdLoad = (account: () => string) =>
      load({
        url: `http://127.0.0.1:${apiPort}`,
        requests: [
          {
            method: 'POST',
            headers,
            setupRequest: (req) => ({
              ...req,
              path: `/v1/accounts/${account()}/holds`,
              body: JSON.stringify({ action: 'outbound_sms', destination: '+14155550123', reference: `hr${n++}`, units: 1, ttlSeconds: 3600 }),
            }),
          },
        ],
      });
    if (want('holds') || want('holdhot')) await warmUp();
    const holds = want('holds') ? await measured(`holds over ${ACCOUNTS} accounts`, 'hold', 1, () => holdLoad(pick)) : null;
    const holdHot = want('holdhot') ? await measured('one-account holds', 'hold', 1, () => holdLoad(() => HOT_ACCOUNT)) : null;
    /**
     * Money after the hold loads, while the api runs: held is the sum of each account's active
     * holds and within its balance, every hold asked was granted; then a sample of holds is
     * settled by usage events naming them (each batch sent twice), each settled hold debited
     * exactly once, and the api's own ledger invariants hold. Notes what it found.
     */
    const checkHolds = async (results: autocannon.Result[]): Promise<boolean> => {
      const problems: string[] = [];
      const granted = results.reduce((sum, r) => sum + grantedOf(r), 0);
      const refused = results.reduce((sum, r) => sum + (r.statusCodeStats?.['200']?.count ?? 0), 0);
      if (refused > 0) problems.push(`${refused} holds not granted (200)`);
      const before = (
        await sql(
          dbUrl,
          `select count(*) filter (where b.held <> coalesce(h.total, 0))::int as mismatched,
             count(*) filter (where b.held > b.balance or b.held < 0)::int as over,
             (select count(*) from credit_holds)::int as holds,
             (select count(*) from credit_holds where status <> 'active')::int as ended
           from credit_balances b
           left join (select account_id, sum(amount) as total from credit_holds where status = 'active' group by account_id) h on h.account_id = b.account_id`,
        )
      ).rows[0] as { mismatched: number; over: number; holds: number; ended: number };
      if (before.mismatched > 0) problems.push(`${before.mismatched} accounts whose held is not the sum of their active holds`);
      if (before.over > 0) problems.push(`${before.over} accounts holding more than their balance`);
      if (before.ended > 0) problems.push(`${before.ended} holds ended before anything settled them`);
      // A request cut off when a load ended (or by a client error) may have held without its answer counted: at most one per connection.
      const unanswered = results.reduce((sum, r) => sum + CONNECTIONS + r.errors, 0);
      if (before.holds < granted || before.holds > granted + unanswered) problems.push(`${before.holds} holds in the database for ${granted} granted answers`);

      const sample = (await sql(dbUrl, `select id, account_id from credit_holds where status = 'active' order by random() limit $1`, [SETTLE_SAMPLE])).rows as Array<{ id: string; account_id: string }>;
      const events = sample.map((h) => ({ id: `settle-${h.id}`, accountId: h.account_id, type: 'sms', segments: 1, holdId: h.id }));
      let wrongAnswers = 0;
      for (let i = 0; i < events.length; i += 500) {
        const batch = events.slice(i, i + 500);
        for (const retry of [false, true]) {
          const response = await fetch(`http://127.0.0.1:${apiPort}/v1/usage`, { method: 'POST', headers, body: JSON.stringify({ events: batch }) });
          if (response.status !== 200) {
            problems.push(`usage batch ${i / 500 + 1}${retry ? ' (sent again)' : ''} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
            continue;
          }
          const { results: answers } = (await response.json()) as { results: Array<{ id: string; status: string; holdId: string | null; duplicate: boolean }> };
          wrongAnswers += batch.filter((e, j) => {
            const a = answers[j];
            return !a || a.id !== e.id || a.status !== 'debited' || a.holdId !== e.holdId || a.duplicate !== retry;
          }).length;
        }
      }
      if (wrongAnswers > 0) problems.push(`${wrongAnswers} settling answers not debited against their hold (or not duplicate when sent again)`);
      const settled = (
        await sql(
          dbUrl,
          `select count(*)::int as found,
             count(*) filter (where h.status = 'settled' and h.usage_event_id = 'settle-' || h.id and h.settled_amount > 0)::int as settled,
             count(*) filter (where (select count(*) from credit_ledger l
                                      where l.source_key = 'usage:' || h.account_id || ':' || h.usage_event_id and l.amount = -h.settled_amount) = 1)::int as debited_once
           from credit_holds h where h.id = any($1::text[])`,
          [sample.map((h) => h.id)],
        )
      ).rows[0] as { found: number; settled: number; debited_once: number };
      if (settled.settled !== sample.length) problems.push(`${sample.length - settled.settled} of ${sample.length} sampled holds not settled by their event`);
      if (settled.debited_once !== sample.length) problems.push(`${sample.length - settled.debited_once} of ${sample.length} sampled holds without exactly one ledger debit`);

      const invariantsStart = Date.now();
      const invariants = await fetch(`http://127.0.0.1:${apiPort}/v1/ops/ledger-invariants`, { headers: { authorization: headers.authorization } });
      const invariantsSeconds = (Date.now() - invariantsStart) / 1000;
      let checked = 0;
      if (invariants.status !== 200) problems.push(`ledger-invariants answered ${invariants.status}`);
      else {
        const report = (await invariants.json()) as { accountsChecked: number; violations: Array<{ accountId: string; rule: string; detail: string }> };
        checked = report.accountsChecked;
        if (report.accountsChecked !== ACCOUNTS + 1) problems.push(`ledger-invariants checked ${report.accountsChecked} accounts, not ${ACCOUNTS + 1}`);
        if (report.violations.length > 0) {
          const rules = [...new Set(report.violations.map((v) => v.rule))].join(', ');
          problems.push(`${report.violations.length} ledger invariant violations (${rules}; first: ${report.violations[0]!.accountId} ${report.violations[0]!.detail})`);
        }
      }
      notes.push(
        problems.length === 0
          ? `holds money checks: ${granted} granted, ${before.holds} holds in the database, held = active holds and within balance on every account; ` +
              `${sample.length} holds settled by usage events sent twice, each settled with one ledger debit; ledger invariants hold on ${checked} accounts (checked in ${invariantsSeconds.toFixed(1)} s)`
          : `holds money checks BROKEN: ${problems.join('; ')}`,
      );
      return problems.length === 0;
    };
    // Money after the holds, checked and settled while the api runs.
    const holdsCorrect = holds || holdHot ? await checkHolds([holds, holdHot].filter((r) => r !== null)) : true;
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : null)));

    if (usage) {
      const dbSpread = await dbBaselineOnce(ACCOUNTS, DURATION);
      figure(
        { name: `single-event usage debits/s over ${ACCOUNTS} accounts${ok(usage)}`, value: usage.requests.average, unit: 'debits/s', baseline: dbSpread, target: { of: 'ratio', op: '>=', value: 0.7 } },
        `raw pg tx (update + insert) over ${ACCOUNTS} rows, ${CONNECTIONS} callers, pool ${POOL}`,
      );
    }
    if (batch) {
      // The same rows by hand, set-based, in batches of the same size. Half of it: the service may spend as much again as the
      // writes on HTTP, JSON, rating and its reads (account, rates, duplicates), on the same 2 cores as Postgres.
      const raw = await batchBaseline(ACCOUNTS, BATCH_EVENTS, BATCH_RAW_CONNECTIONS, DURATION);
      figure(
        {
          name: `batch usage ingest, batches of ${BATCH_EVENTS}, ${BATCH_CONNECTIONS} callers${ok(batch)}`,
          value: batch.requests.average * BATCH_EVENTS,
          unit: 'events/s',
          baseline: raw,
          target: { of: 'ratio', op: '>=', value: 0.5 },
        },
        `raw pg unnest, ${BATCH_EVENTS} events a tx, ${BATCH_RAW_CONNECTIONS} at a time`,
      );
    }
    if (hot) {
      const dbSingle = await dbBaselineOnce(1, DURATION);
      figure(
        { name: `debits/s to one account, ${CONNECTIONS} callers${ok(hot)}`, value: hot.requests.average, unit: 'debits/s', baseline: dbSingle, target: { of: 'ratio', op: '>=', value: 1.0 } },
        `raw pg tx (update + insert) on 1 row, ${CONNECTIONS} callers, pool ${POOL}`,
      );
    }
    if (holds) {
      const dbSpread = await dbBaselineOnce(ACCOUNTS, DURATION);
      figure(
        { name: `holds granted/s over ${ACCOUNTS} accounts${ok(holds)}${notGranted(holds)}`, value: grantedPerSecond(holds), unit: 'holds/s', baseline: dbSpread, target: { of: 'ratio', op: '>=', value: 0.7 } },
        `raw pg tx (update + insert) over ${ACCOUNTS} rows, ${CONNECTIONS} callers, pool ${POOL}`,
      );
    }
    if (holdHot) {
      const dbSingle = await dbBaselineOnce(1, DURATION);
      figure(
        { name: `holds granted/s on one account, ${CONNECTIONS} callers${ok(holdHot)}${notGranted(holdHot)}`, value: grantedPerSecond(holdHot), unit: 'holds/s', baseline: dbSingle, target: { of: 'ratio', op: '>=', value: 1.0 } },
        `raw pg tx (update + insert) on 1 row, ${CONNECTIONS} callers, pool ${POOL}`,
      );
    }

    // The renewal waves: each in its own database, after the api has stopped; the worker's, and the same rows by raw SQL.
    let renewalsCorrect = true;
    if (want('renewals')) {
      const rates = new Map<number, number>();
      for (const count of WAVES) {
        const raw = await rawRenewalWave({ adminUrl: admin, count });
        const wave = await renewalWave({ adminUrl: admin, count });
        renewalsCorrect &&= wave.correct && raw.correct;
        rates.set(count, count / wave.seconds);
        notes.push(`renewal wave of ${count}: ${wave.detail}`, `raw SQL renewal baseline of ${count}: ${raw.detail}`);
        // Half the raw statements' rate, as for batch ingest: the worker writes the same rows, in batches of 200, and per
        // batch also claims them (SKIP LOCKED), reads the catalog, plans each renewal in JS, reads back what it charges and
        // settles, and goes through BullMQ and Redis, on the same 2 cores as Postgres: as much again as the writes is its
        // allowance. A little under where the old absolute target stood: 10,000 in 6 s (1,667/s) is 0.56 to 0.65 of the
        // raw rates measured here (2,559 to 2,999/s at 10,000; 2,875/s at 100,000: the raw statements scale linearly).
        figure(
          {
            name: `renewals/s, ${count} subscriptions due at one instant, all renewed${wave.correct ? '' : ' (BROKEN)'}${raw.correct ? '' : ' (baseline BROKEN)'}`,
            value: count / wave.seconds,
            unit: 'renewals/s',
            baseline: count / raw.seconds,
            target: { of: 'ratio', op: '>=', value: 0.5 },
          },
          'raw SQL: 3 set-based statements, same rows',
        );
      }
      if (rates.size >= 2) {
        // Linear scaling: the larger wave (ten times the smaller by default) at (nearly) the smaller one's rate.
        const small = Math.min(...rates.keys());
        const large = Math.max(...rates.keys());
        const count = (c: number) => c.toLocaleString('en-US');
        figure(
          { name: `${count(large)} wave rate / ${count(small)} wave rate`, value: rates.get(large)!, unit: 'renewals/s', baseline: rates.get(small)!, target: { of: 'ratio', op: '>=', value: 0.9 } },
          `the ${count(small)} wave's rate`,
        );
      }
    }

    // Correctness after the load: the ledger adds up, and every accepted event debited once (the raw baseline's accounts and events too).
    const broken = await sql(
      dbUrl,
      `select count(*)::int as n from accounts a join credit_balances b on b.account_id = a.id
         where b.balance <> (select coalesce(sum(amount), 0) from credit_ledger l where l.account_id = a.id) or b.balance < 0`,
    );
    const debits = await sql(
      dbUrl,
      `select (select count(*) from usage_events where status = 'debited' and amount > 0)::int as events, (select count(*) from credit_ledger where kind = 'usage')::int as entries,
         (select count(*) from usage_events where account_id like 'acc_benchraw%')::int as raw`,
    );
    // Bytes on disk per row (heap, indexes, TOAST over every month's partition) of the tables usage
    // grows: the capacity model's storage figures (docs/scaling.md).
    const sizes = await sql(
      dbUrl,
      `select t.name, (select count(*) from pg_inherits i where i.inhparent = t.name::regclass) as parts,
              (select coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) from pg_inherits i where i.inhparent = t.name::regclass)::bigint as bytes
       from unnest(array['usage_events', 'credit_ledger']) as t(name)`,
    );
    for (const row of sizes.rows) {
      const rows = Number((await sql(dbUrl, `select count(*)::bigint as n from ${row.name}`)).rows[0].n);
      if (rows > 0) notes.push(`${row.name}: ${rows} rows, ${(Number(row.bytes) / 1048576).toFixed(1)} MB with indexes over ${row.parts} partitions, ${Math.round(Number(row.bytes) / rows)} bytes per row`);
    }
    const correct = broken.rows[0].n === 0 && debits.rows[0].events === debits.rows[0].entries && renewalsCorrect && holdsCorrect;

    // A ratio target without a baseline measured is not met: never compare the raw value with a ratio.
    const met = (f: Figure) => {
      if (f.target.of === 'ratio' && !f.baseline) return false;
      const v = f.target.of === 'ratio' ? f.value / f.baseline! : f.value;
      return f.target.op === '>=' ? v >= f.target.value : v <= f.target.value;
    };
    const amount = (v: number, unit: string) => `${v.toFixed(unit === 'ms' || unit === 's' ? 2 : 0)} ${unit}`;
    const rows = figures.map((f) => [
      f.name,
      amount(f.value, f.unit),
      f.baseline === null ? '-' : amount(f.baseline, f.unit),
      baselineIs.get(f) ?? '-',
      f.baseline ? (f.value / f.baseline).toFixed(2) : '-',
      `${f.target.of === 'ratio' ? 'ratio' : 'value'} ${f.target.op} ${f.target.value}`,
      met(f) ? 'met' : 'NOT MET',
    ]);
    const header = ['figure', 'value', 'baseline (same run)', 'baseline is', 'ratio', 'target', ''];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    console.log([line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
    console.log(`\ncorrectness after load: ${correct ? 'ledger sums match, every accepted event debited once' : 'BROKEN'} (${debits.rows[0].events} debits, ${debits.rows[0].raw} of them the raw batch baseline's)`);
    if (holds || holdHot) console.log(`holds after load: ${holdsCorrect ? 'held matches the active holds, settled holds debited once, no invariant violated' : 'BROKEN'}`);
    for (const note of notes) console.log(note);
    notes.push(...[...baselineIs].map(([f, what]) => `baseline of ${f.name}: ${what}, measured in this run`));
    // A partial run (BENCH_ONLY) leaves the full run's table alone.
    writeFileSync(
      new URL(only ? './results/partial.json' : './results/latest.json', import.meta.url),
      JSON.stringify({ machine: `${cpus().length} cores, ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`, at: new Date().toISOString(), correct, figures, notes }, null, 2) + '\n',
    );
    if (!correct) process.exitCode = 1;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await sql(admin, `drop database if exists ${dbName} with (force)`);
    await deleteKeys(`bench-${dbName}`);
  }
}

await main();
