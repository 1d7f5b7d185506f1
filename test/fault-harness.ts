/**
 * Fault-test harness: the service as it runs in production (separate api and worker
 * processes, `node dist/<entry>.js`, built from src/ when stale) on a database and a Redis of its own, with
 * the handles a fault test needs: stop and restart that Redis on the same port, terminate
 * every service connection to Postgres, read what the workers emailed (.eml files in
 * MAIL_DIR), receive webhooks, and call the public HTTP API as a client would, recording
 * every answer (status, problem code, latency, or the socket error).
 *
 * Everything started here is killed at teardown (and when the test process exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Test } from 'tap';
import { renderEmail } from '../src/modules/notifications/templates.js';
import { createTestDatabase } from './helper.js';
import { entryArgv } from './processes.js';

export const root = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------
// Waiting and small utilities

/** Thrown inside an `until` condition: stop waiting now (a process died), not "not yet". */
export class GiveUp extends Error {}

/**
 * Polls `fn` until it returns something truthy (errors count as "not yet", except GiveUp),
 * and returns it. Times out with `what` and the last error or value seen.
 */
export async function until<T>(fn: () => T | Promise<T>, what: string, ms = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const latencySummary = (ms: number[]) =>
  `n=${ms.length} p50=${percentile(ms, 50).toFixed(1)}ms p99=${percentile(ms, 99).toFixed(1)}ms max=${Math.max(...ms).toFixed(1)}ms`;

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!, i);
    }),
  );
  return results;
}

// Children are killed however the test process ends (a tap timeout included).
const children = new Set<ChildProcess>();
let exitHooked = false;
function track(child: ChildProcess) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (exitHooked) return;
  exitHooked = true;
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Nobody else handles it: die of it as we would have without this hook.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

// ---------------------------------------------------------------------------------------
// A Redis of our own

export interface OwnRedis {
  port: number;
  url: string;
  running(): boolean;
  /** Starts redis-server on the same port (empty: no persistence) and waits until it answers PING. */
  start(): Promise<void>;
  /** Kills it (SIGKILL by default: a crash) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** A client for the test itself (FLUSHALL, CLIENT LIST, BullMQ getters); fails fast while Redis is down. */
  client(): Redis;
  /** How many BullMQ workers of `queue` under `prefix` are connected. */
  workerCount(prefix: string, queue: string): Promise<number>;
  /** BullMQ job counts of `queue` under `prefix` (waiting, prioritized, delayed, active...). */
  jobCounts(prefix: string, queue: string): Promise<Record<string, number>>;
  output(): string;
}

export async function startRedis(t: Test): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fault-redis-'));
  let child: ChildProcess | null = null;
  let out = '';
  let testClient: Redis | null = null;

  const ping = async () => {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  };

  const redis: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    running: () => child !== null && child.exitCode === null && child.signalCode === null,
    async start() {
      if (redis.running()) throw new Error('redis-server is running already');
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      track(proc);
      proc.stdout!.on('data', (c) => (out += c));
      proc.stderr!.on('data', (c) => (out += c));
      child = proc;
      await until(async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited ${proc.exitCode}: ${out.slice(-500)}`);
        return ping();
      }, `redis-server on port ${port}`, 15_000, 50);
    },
    async stop(signal = 'SIGKILL') {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill(signal);
      await exited;
    },
    client() {
      if (!testClient) {
        testClient = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 1000 });
        testClient.on('error', () => {});
      }
      return testClient;
    },
    async workerCount(prefix, queue) {
      const q = new Queue(queue, { connection: redis.client(), prefix });
      try {
        return await q.getWorkersCount();
      } finally {
        await q.close();
      }
    },
    async jobCounts(prefix, queue) {
      const q = new Queue(queue, { connection: redis.client(), prefix });
      try {
        return await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
      } finally {
        await q.close();
      }
    },
    output: () => out,
  };
  await redis.start();
  t.teardown(async () => {
    testClient?.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return redis;
}

// ---------------------------------------------------------------------------------------
// A Redis Cluster of our own

export interface OwnClusterNode {
  port: number;
  running(): boolean;
  /** Kills it (SIGKILL by default: a crash) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and cluster config (empty: no persistence). */
  start(): Promise<void>;
  /** A plain client of this one node (CLUSTER INFO, ROLE, DBSIZE). */
  client(): Redis;
}

export interface OwnRedisCluster {
  /** redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...: every node, as REDIS_URL. */
  url: string;
  nodes: OwnClusterNode[];
  output(): string;
}

/**
 * A Redis Cluster on loopback from the machine's redis-server: `masters` masters with
 * `replicas` replicas each, no persistence, a node timeout of one second (a dead master is
 * marked failed, or failed over, within seconds). Waits until every node reports
 * cluster_state:ok; killed and its directory removed at teardown.
 */
export async function startRedisCluster(t: Test, opts: { masters?: number; replicas?: number } = {}): Promise<OwnRedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  let out = '';
  const clients: Redis[] = [];
  const procs: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = once(p, 'exit');
        p.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });
  // A client port and a cluster bus port per node, all distinct.
  const ports = new Set<number>();
  while (ports.size < 2 * masters * (1 + replicas)) ports.add(await freePort());
  const [clientPorts, busPorts] = [[...ports].filter((_, i) => i % 2 === 0), [...ports].filter((_, i) => i % 2 === 1)];
  const nodes: OwnClusterNode[] = clientPorts.map((port, i) => {
    let proc: ChildProcess;
    // The node's identity and slots live in its nodes-<port>.conf: a restart rejoins the cluster (its data is gone).
    const start = () => {
      proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]), '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '1000', '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      track(proc);
      procs.push(proc);
      proc.stdout!.on('data', (c) => (out += c));
      proc.stderr!.on('data', (c) => (out += c));
    };
    start();
    let client: Redis | null = null;
    const running = () => proc.exitCode === null && proc.signalCode === null;
    return {
      port,
      running,
      async start() {
        if (running()) throw new Error(`redis-server on ${port} is running already`);
        start();
      },
      async stop(signal = 'SIGKILL') {
        if (!running()) return;
        const exited = once(proc, 'exit');
        proc.kill(signal);
        await exited;
      },
      client() {
        if (!client) {
          client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 1000, lazyConnect: true });
          client.on('error', () => {});
          clients.push(client);
        }
        return client;
      },
    };
  });
  const info = async (node: OwnClusterNode) => {
    if (node.client().status === 'wait') await node.client().connect();
    return String(await node.client().cluster('INFO'));
  };
  await until(async () => (await Promise.all(nodes.map(info))).length === nodes.length, 'every cluster node to answer', 15_000, 50);
  const create = spawn('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(create);
  let created = '';
  create.stdout!.on('data', (c) => (created += c));
  create.stderr!.on('data', (c) => (created += c));
  const [code] = await once(create, 'exit');
  if (code !== 0) throw new Error(`redis-cli --cluster create exited ${code}: ${created.slice(-1000)}`);
  // Every node agrees the cluster is whole (each knows all the others, every slot served).
  await until(
    async () => (await Promise.all(nodes.map(info))).every((i) => i.includes('cluster_state:ok') && i.includes(`cluster_known_nodes:${nodes.length}`)),
    'cluster_state:ok on every node',
    20_000,
    50,
  );
  // Every replica has its master's data (a failover then loses only what was written after).
  await until(
    async () => {
      const roles = await Promise.all(nodes.map(async (n) => String(await n.client().info('replication'))));
      return roles.filter((r) => r.includes('role:slave')).every((r) => r.includes('master_link_status:up'));
    },
    'every replica in sync with its master',
    20_000,
    50,
  );
  return { url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, nodes, output: () => out };
}

// ---------------------------------------------------------------------------------------
// The service's processes

export interface ServiceProcess {
  name: string;
  kind: 'api' | 'worker';
  /** The api's base URL (workers listen nowhere). */
  url: string | null;
  child: ChildProcess;
  output(): string;
  alive(): boolean;
  /** How it ended, if it did. */
  ended(): string | null;
}

/** Lines of a child's output that mean it crashed or is going down on an error. */
export const FATAL = /uncaught|unhandled|second error|exiting|closing after an error|killed by timeout|start-up failed|"level":60/i;

// Configuration the children must not inherit from this process.
const SERVICE_VARS = [
  'NODE_ENV', 'HOST', 'PORT', 'LOG_LEVEL', 'DATABASE_URL', 'DATA_DIR', 'DATABASE_POOL_SIZE', 'MIGRATE_ON_START', 'REDIS_URL', 'QUEUE_PREFIX',
  'SMTP_URL', 'MAIL_DIR', 'MAIL_FROM', 'TAX_RATES', 'INVOICE_DUE_DAYS', 'DUNNING_RETRY_DAYS', 'SCHEDULER_INTERVAL_MS', 'TEST_CLOCKS_ENABLED',
  'PAST_DUE_GRACE_DAYS', 'AUTHORIZE_CACHE_ACCOUNTS', 'AUTO_RECHARGE_MAX_FAILURES', 'AUTO_RECHARGE_RETRY_MINUTES', 'WEBHOOK_ALLOWED_HOSTS',
  'WEBHOOK_RETRY_SCALE', 'WEBHOOK_SECRET_GRACE_HOURS', 'RATE_LIMIT_PER_MINUTE', 'RATE_LIMIT_HOT_PER_MINUTE', 'MANDATE_CAP_INR',
  'PRE_DEBIT_NOTICE_HOURS', 'BOOTSTRAP_API_KEY', 'TRIAL_WHITELIST_LIMIT', 'OUTBOX_POLL_MS',
];

/** The application_name of the test's own Postgres connections: never terminated by terminateServiceConnections. */
export const TEST_APPLICATION_NAME = 'fault-test';

export interface Cluster {
  databaseUrl: string;
  databaseName: string;
  mailDir: string;
  prefix: string;
  opsKey: string;
  redis: ClusterRedis;
  apis: ServiceProcess[];
  workers: ServiceProcess[];
  all: ServiceProcess[];
  /** Raw SQL on the test database, for assertions only. */
  sql<R = any>(text: string, params?: unknown[]): Promise<R[]>;
  /**
   * pg_terminate_backend on every connection to the test database but the test's own:
   * the apis' pools, their change-feed LISTEN connections, the workers' pools.
   */
  terminateServiceConnections(): Promise<{ terminated: number; byApplication: Record<string, number> }>;
  /** Output lines of each process matching FATAL. */
  fatalLines(): Array<{ process: string; line: string }>;
  /** Each process's warn/error log messages, counted: for the report. */
  logSummary(): string;
  /** An HTTP client of api `i` with the ops key. */
  api(i: number): ApiClient;
}

/** What the cluster needs of its Redis: where it is, and BullMQ's worker count (a Redis of startRedis, or an adapter over a Redis Cluster). */
export type ClusterRedis = Pick<OwnRedis, 'url' | 'workerCount'>;

export interface ClusterOptions {
  apis: number;
  workers: number;
  redis: ClusterRedis;
  env?: Record<string, string>;
}

export async function startCluster(t: Test, opts: ClusterOptions): Promise<Cluster> {
  const databaseUrl = await createTestDatabase(t);
  const databaseName = new URL(databaseUrl).pathname.slice(1);
  const mailDir = mkdtempSync(join(tmpdir(), 'fault-mail-'));
  const prefix = `ft-${randomBytes(4).toString('hex')}`;
  const opsKey = `bsk_fault-${randomBytes(32).toString('base64url')}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3, application_name: TEST_APPLICATION_NAME });
  pool.on('error', () => {});

  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SERVICE_VARS.includes(k)));
  const baseEnv: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: opts.redis.url,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'development',
    MAIL_DIR: mailDir,
    BOOTSTRAP_API_KEY: opsKey,
    SCHEDULER_INTERVAL_MS: '200',
    OUTBOX_POLL_MS: '100',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    // The load is made with one ops key: the per-key budget is not what these tests are about.
    RATE_LIMIT_PER_MINUTE: '10000000',
    RATE_LIMIT_HOT_PER_MINUTE: '10000000',
    ...opts.env,
  };

  const spawnService = (kind: 'api' | 'worker', n: number, port: number | null): ServiceProcess => {
    const entry = kind === 'api' ? 'src/server.ts' : 'src/worker.ts';
    const env = { ...inherited, ...baseEnv, ...(port ? { PORT: String(port), HOST: '127.0.0.1' } : {}) };
    const child = spawn(process.execPath, entryArgv(entry), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    const keep = (c: Buffer) => {
      out += c.toString();
      if (out.length > 4_000_000) out = out.slice(-2_000_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return {
      name: `${kind}-${n}`,
      kind,
      url: port ? `http://127.0.0.1:${port}` : null,
      child,
      output: () => out,
      alive: () => child.exitCode === null && child.signalCode === null,
      ended: () => (child.exitCode !== null ? `exit code ${child.exitCode}` : child.signalCode !== null ? `signal ${child.signalCode}` : null),
    };
  };

  const apis: ServiceProcess[] = [];
  for (let i = 0; i < opts.apis; i++) apis.push(spawnService('api', i, await freePort()));
  const workers: ServiceProcess[] = [];
  for (let i = 0; i < opts.workers; i++) workers.push(spawnService('worker', i, null));
  const all = [...apis, ...workers];

  t.teardown(async () => {
    // FAULT_LOG_DIR=<dir>: keep each process's whole output there, for a post-mortem.
    const logDir = process.env.FAULT_LOG_DIR;
    if (logDir) {
      mkdirSync(logDir, { recursive: true });
      const file = basename(process.argv[1] ?? 'fault', '.ts');
      for (const p of all) writeFileSync(join(logDir, `${file}-${p.name}.log`), p.output());
    }
    await Promise.all(
      all.map(async (p) => {
        if (!p.alive()) return;
        const exited = once(p.child, 'exit');
        p.child.kill('SIGKILL');
        await exited;
      }),
    );
    await pool.end();
    rmSync(mailDir, { recursive: true, force: true });
  });

  const notDead = () => {
    const dead = all.find((p) => !p.alive());
    if (dead) throw new GiveUp(`${dead.name} ended (${dead.ended()}) during start-up: ${dead.output().slice(-2000)}`);
  };
  for (const api of apis) {
    await until(async () => {
      notDead();
      return (await fetch(`${api.url}/healthz`)).ok;
    }, `${api.name} to answer /healthz`, 60_000);
  }
  await until(async () => {
    notDead();
    return (await opts.redis.workerCount(prefix, 'events')) >= opts.workers;
  }, `${opts.workers} workers to listen on the events queue`, 60_000);

  const sql = async <R = any>(text: string, params?: unknown[]): Promise<R[]> => (await pool.query(text, params)).rows as R[];
  const cluster: Cluster = {
    databaseUrl,
    databaseName,
    mailDir,
    prefix,
    opsKey,
    redis: opts.redis,
    apis,
    workers,
    all,
    sql,
    async terminateServiceConnections() {
      const rows = await sql<{ application_name: string; n: number }>(
        `select coalesce(application_name, '') as application_name, count(*)::int as n
           from (select application_name, pg_terminate_backend(pid) as ok from pg_stat_activity
                  where datname = $1 and pid <> pg_backend_pid() and application_name is distinct from $2) s
          where ok group by 1`,
        [databaseName, TEST_APPLICATION_NAME],
      );
      const byApplication = Object.fromEntries(rows.map((r) => [r.application_name, r.n]));
      return { terminated: rows.reduce((s, r) => s + r.n, 0), byApplication };
    },
    fatalLines() {
      return all.flatMap((p) =>
        p
          .output()
          .split('\n')
          .filter((line) => FATAL.test(line))
          .map((line) => ({ process: p.name, line: line.slice(0, 600) })),
      );
    },
    logSummary() {
      return all
        .map((p) => {
          const counts = new Map<string, number>();
          for (const line of p.output().split('\n')) {
            if (!line.trim()) continue;
            let label = line.slice(0, 200);
            try {
              const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string; code?: string } };
              const err = entry.err ? ` (${[entry.err.code, entry.err.message].filter(Boolean).join(': ').slice(0, 160)})` : '';
              label = `[${entry.level}] ${entry.msg}${err}`;
            } catch {
              // not a pino line: keep its start
            }
            counts.set(label, (counts.get(label) ?? 0) + 1);
          }
          const lines = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([label, n]) => `    ${n} x ${label}`);
          return `  ${p.name} (${p.alive() ? 'alive' : p.ended()}):${lines.length ? `\n${lines.join('\n')}` : ' no output'}`;
        })
        .join('\n');
    },
    api: (i) => apiClient(apis[i]!.url!, opsKey, apis[i]!.name),
  };
  return cluster;
}

// ---------------------------------------------------------------------------------------
// The public API, as a client calls it

export interface Answer {
  api: string;
  method: string;
  path: string;
  /** null: no HTTP answer at all (refused, reset, timed out). */
  status: number | null;
  error: string | null;
  contentType: string | null;
  retryAfter: string | null;
  /** The problem's `code`, for an error answer. */
  code: string | null;
  body: any;
  startedAt: number;
  ms: number;
}

export interface ApiClient {
  name: string;
  base: string;
  call(method: string, path: string, opts?: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number }): Promise<Answer>;
}

export function apiClient(base: string, key: string, name = base): ApiClient {
  return {
    name,
    base,
    async call(method, path, opts = {}) {
      const startedAt = Date.now();
      const t0 = performance.now();
      const answer: Answer = { api: name, method, path, status: null, error: null, contentType: null, retryAfter: null, code: null, body: undefined, startedAt, ms: 0 };
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
          body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
          // Generous by default: on a 2-core machine that is busy with other work, a setup call
          // (an upgrade renders a PDF) can take 15 s. Latency is asserted where it matters, with
          // timeoutMs of its own.
          signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
        });
        const text = await res.text();
        answer.status = res.status;
        answer.contentType = res.headers.get('content-type');
        answer.retryAfter = res.headers.get('retry-after');
        try {
          answer.body = text ? JSON.parse(text) : undefined;
        } catch {
          answer.body = text;
        }
        if (res.status >= 400 && answer.body && typeof answer.body === 'object') answer.code = answer.body.code ?? null;
      } catch (err) {
        const e = err as Error & { cause?: { code?: string; message?: string } };
        answer.error = [e.name, e.cause?.code ?? e.cause?.message ?? e.message].filter(Boolean).join(': ');
      }
      answer.ms = performance.now() - t0;
      return answer;
    },
  };
}

export const describeAnswer = (a: Answer) =>
  `${a.api} ${a.method} ${a.path} -> ${a.status ?? a.error}${a.code ? ` ${a.code}` : ''}` +
  `${a.status !== null && a.status >= 400 ? ` [${a.contentType}; retry-after ${a.retryAfter}]` : ''} in ${a.ms.toFixed(0)} ms` +
  `${a.status === 500 || (a.status !== null && a.status >= 400 && !a.code) ? ` ${JSON.stringify(a.body).slice(0, 200)}` : ''}`;

/** The contract for a request the database could not serve: 503 problem+json `database_unavailable` with Retry-After. */
/**
 * The 503 contract: problem+json with Retry-After, and a documented code: `database_unavailable`
 * (the connection was lost), or `service_unavailable` (a dependency behind it was: the sandbox
 * gateway keeps its vault in the same database, so saving a method can lose its connection too).
 */
export const isDatabaseUnavailable = (a: Answer) =>
  a.status === 503 &&
  (a.contentType ?? '').startsWith('application/problem+json') &&
  (a.code === 'database_unavailable' || a.code === 'service_unavailable') &&
  !!a.retryAfter;

export const ok = (a: Answer) => a.status !== null && a.status >= 200 && a.status < 300;

// ---------------------------------------------------------------------------------------
// Accounts as an Indian customer makes them (INR, amounts in paise)

export const STARTER_MONTHLY = (initialCredits = 100_000) => ({
  planId: 'plan_starter_v1',
  billingCycle: 'monthly',
  initialCredits,
  addOns: { whatsapp: false },
  paymentMethod: { type: 'card', token: 'tok_visa' },
});

let accountSeq = 0;
/** A unique, valid address per account, so each email can be told apart by recipient. */
export const customerEmail = (tag: string) => `billing+${tag}-${process.pid}-${++accountSeq}@sharma-telecom.co.in`;

/** Account, KYC submitted then approved, ready to upgrade; throws on any answer but 2xx. */
export async function readyIndianAccount(api: ApiClient, opts: { tag?: string; testClockId?: string } = {}) {
  const email = customerEmail(opts.tag ?? 'acct');
  const created = await api.call('POST', '/v1/accounts', {
    body: { name: 'Sharma Telecom Pvt Ltd', email, country: 'IN', ...(opts.testClockId ? { testClockId: opts.testClockId } : {}) },
  });
  if (created.status !== 201) throw new Error(`account creation: ${describeAnswer(created)}`);
  for (const status of ['submitted', 'approved']) {
    const kyc = await api.call('PUT', `/v1/accounts/${created.body.id}/kyc`, { body: { status } });
    if (kyc.status !== 200) throw new Error(`kyc ${status}: ${describeAnswer(kyc)}`);
  }
  return { id: created.body.id as string, email };
}

/** A paid Starter (monthly, card) account; returns its upgrade answer's invoice number. */
export async function paidIndianAccount(api: ApiClient, opts: { tag?: string; testClockId?: string; initialCredits?: number } = {}) {
  const account = await readyIndianAccount(api, opts);
  const res = await api.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: STARTER_MONTHLY(opts.initialCredits),
    headers: { 'idempotency-key': `up-${account.id}` },
  });
  if (res.status !== 201) throw new Error(`upgrade: ${describeAnswer(res)}`);
  return { ...account, invoiceNumber: res.body.invoice.number as string, subscriptionId: res.body.subscription.id as string };
}

// ---------------------------------------------------------------------------------------
// Emails (.eml files in MAIL_DIR) and which events send one

export interface MailFile {
  file: string;
  messageId: string;
  to: string;
  subject: string;
}

const mailCache = new Map<string, MailFile>();

/** How many .eml files the workers wrote so far (cheap: no file is read). */
export function mailCount(dir: string): number {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.eml')).length;
  } catch {
    return 0;
  }
}

/** The headers that identify each .eml file the workers wrote (read once per file: a re-send overwrites with the same Message-ID). */
export function readMails(dir: string): MailFile[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.eml'));
  } catch {
    return [];
  }
  const mails: MailFile[] = [];
  for (const file of names) {
    const path = join(dir, file);
    let mail = mailCache.get(path);
    if (!mail) {
      let head: string;
      try {
        const fd = openSync(path, 'r');
        try {
          const buf = Buffer.alloc(16_384);
          head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
        } finally {
          closeSync(fd);
        }
      } catch {
        continue; // being written
      }
      if (!/\r?\n\r?\n/.test(head)) continue; // headers not complete yet
      head = head.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
      const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
      mail = { file, messageId: header('Message-ID'), to: header('To').replace(/^.*<([^>]+)>.*$/, '$1'), subject: decodeWords(header('Subject')) };
      mailCache.set(path, mail);
    }
    mails.push(mail);
  }
  return mails;
}

export interface EmailAccount {
  eventId: string;
  type: string;
  accountId: string;
  /** email_deliveries rows of the event, and those marked sent. */
  deliveries: number;
  sent: number;
  /** .eml files with the recipient and subject of the event's delivery row(s). */
  files: number;
}

/**
 * Every outbox event (after `sinceOutboxId`) that should email, with what became of it: its
 * email_deliveries rows and the .eml files with their recipient and subject (the scenarios
 * give each account its own address, and no account two emails with one subject). Also the
 * files that match no delivery row.
 */
export async function emailLedger(cluster: Pick<Cluster, 'sql' | 'mailDir'>, sinceOutboxId = 0): Promise<{ events: EmailAccount[]; stray: MailFile[] }> {
  const events = (
    await cluster.sql<{ event_id: string; type: string; account_id: string | null; payload: Record<string, unknown> }>(
      'select event_id, type, account_id, payload from outbox where id > $1 order by id',
      [sinceOutboxId],
    )
  ).filter(shouldEmail);
  const deliveries = await cluster.sql<{ event_id: string; to: string; subject: string; sent: boolean }>(
    'select event_id, "to", subject, sent_at is not null as sent from email_deliveries',
  );
  const files = new Map<string, MailFile[]>();
  for (const mail of readMails(cluster.mailDir)) {
    const key = `${mail.to.toLowerCase()}\n${mail.subject}`;
    files.set(key, [...(files.get(key) ?? []), mail]);
  }
  const byEvent = new Map<string, typeof deliveries>();
  const known = new Set<string>();
  for (const d of deliveries) {
    byEvent.set(d.event_id, [...(byEvent.get(d.event_id) ?? []), d]);
    known.add(`${d.to.toLowerCase()}\n${d.subject}`);
  }
  return {
    events: events.map((e) => {
      const rows = byEvent.get(e.event_id) ?? [];
      const keys = new Set(rows.map((d) => `${d.to.toLowerCase()}\n${d.subject}`));
      return {
        eventId: e.event_id,
        type: e.type,
        accountId: e.account_id!,
        deliveries: rows.length,
        sent: rows.filter((d) => d.sent).length,
        files: [...keys].reduce((n, k) => n + (files.get(k)?.length ?? 0), 0),
      };
    }),
    stray: [...files].filter(([k]) => !known.has(k)).flatMap(([, m]) => m),
  };
}

/** "3 x subscription.renewed, 1 x kyc.status_changed" */
export const countByType = (events: Array<{ type: string }>) =>
  [...events.reduce((m, e) => m.set(e.type, (m.get(e.type) ?? 0) + 1), new Map<string, number>())].map(([k, n]) => `${n} x ${k}`).join(', ');

/** RFC 2047 encoded words (a subject with non-ASCII characters). */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=\s*/g, (_, _charset: string, enc: string, text: string) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
  );
}

/**
 * Whether an outbox event should send the account an email, by the service's own templates
 * (renderEmail), plus the upgrade confirmation which has a template of its own.
 */
export function shouldEmail(event: { type: string; payload: Record<string, unknown>; account_id?: string | null; accountId?: string | null }): boolean {
  if (!(event.account_id ?? event.accountId)) return false;
  if (event.type === 'account.upgraded') return true;
  try {
    return renderEmail({ type: event.type, payload: event.payload ?? {} }, { name: 'x', email: 'x@example.com' }) !== null;
  } catch {
    // A template that needs the payload's amounts and times (asked with none): it does email.
    return true;
  }
}

// ---------------------------------------------------------------------------------------
// A webhook receiver

export interface ReceivedHook {
  path: string;
  webhookId: string;
  type: string | null;
  at: number;
  headers: IncomingHttpHeaders;
}

/** A real HTTP receiver on loopback that answers 200 to every POST and records it. */
export async function webhookReceiver(t: Test) {
  const received: ReceivedHook[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let type: string | null = null;
      try {
        type = JSON.parse(body).type ?? null;
      } catch {
        // keep null
      }
      received.push({ path: req.url ?? '', webhookId: String(req.headers['webhook-id'] ?? ''), type, at: Date.now(), headers: req.headers });
      res.statusCode = 200;
      res.end();
    });
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, received, urlFor: (name: string) => `${base}/hooks/${name}` };
}
