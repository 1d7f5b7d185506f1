import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { projectRoot } from '../lib/paths.js';
import { isConnectionError } from './errors.js';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;

export const migrationsFolder = join(projectRoot, 'migrations');

/** Any two migrators, on any hosts, serialise on this advisory lock key. */
const MIGRATION_LOCK_KEY = 7_202_611_260;

/** What a LISTEN subscriber hears: a payload, or that the stream stopped or (re)started. */
export interface Listener {
  onPayload(payload: string): void;
  /** false: notifications may have been missed; true: listening again from now on. */
  onLive(live: boolean): void;
}

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  ping(): Promise<void>;
  /** LISTEN on a channel (reconnecting on Postgres) until the returned stop is called. */
  listen(channel: string, listener: Listener, logger: Logger): Promise<() => Promise<void>>;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export function openPostgres(url: string, poolSize: number, logger: Logger): Database {
  return postgresDatabase(url, createPostgresPool(url, poolSize, logger));
}

/** The service's pool: what `openPostgres` runs on (the tests share one across test cases). */
export function createPostgresPool(url: string, poolSize: number, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    application_name: 'billing-service',
    // No JIT compilation in the service's sessions: Postgres compiles any query whose estimated
    // cost passes jit_above_cost, and queries over the partitioned history (whose months' row
    // counts it guesses) pass it with a handful of rows: the ledger check spent 0.8 to 0.9 s
    // compiling to read a few hundred rows (0.3 ms without). A startup parameter, so no round
    // trip; docs/operations.md says what to do behind a PgBouncer.
    options: '-c jit=off',
    // An unreachable server fails the request in seconds instead of queueing it forever.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // The pool listens for errors only on idle clients. A client checked out for a transaction
  // whose connection dies between two statements raises `error` with nobody listening, which
  // kills the process: every client gets a listener of its own for its whole life. The query
  // in flight fails on its own, and the pool discards the broken client when it comes back.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn({ err }, 'postgres connection lost; the pool reconnects'));
  });
  pool.on('error', () => {}); // idle clients: already logged by their own listener
  return pool;
}

/** A Database on a pool made by `createPostgresPool`; close() ends the pool. */
export function postgresDatabase(url: string, pool: pg.Pool): Database {
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  db.transaction = transactionOn(pool) as Db['transaction'];
  return {
    db,
    kind: 'postgres',
    ping: async () => {
      await pool.query('select 1');
    },
    migrate: () => migratePostgres(url),
    listen: (channel, listener, log) => listenPostgres(url, channel, listener, log),
    close: () => pool.end(),
  };
}

/**
 * `db.transaction` with the checkout in our hands. drizzle's own runs BEGIN before its
 * try/finally, so a connection that dies at BEGIN is never released and the pool shrinks by
 * one for good; here the client always goes back, and a broken one is discarded. A drizzle
 * instance per client is kept for the client's life (they are few and long-lived).
 */
function transactionOn(pool: pg.Pool) {
  const sessions = new WeakMap<pg.PoolClient, Db>();
  return async function transaction<T>(run: (tx: Tx) => Promise<T>, config?: Parameters<Db['transaction']>[1]): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      let session = sessions.get(client);
      if (!session) {
        session = drizzlePg(client, { schema }) as unknown as Db;
        sessions.set(client, session);
      }
      return await session.transaction(run, config);
    } catch (err) {
      if (isConnectionError(err)) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  };
}

const HEARTBEAT_EVERY_MS = 10_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

/**
 * A dedicated connection (a pooled one would lose its LISTEN when returned) that reconnects
 * with a growing pause. Whenever it is down the listener hears live=false, so anything
 * cached on the strength of its notifications is dropped rather than trusted.
 */
async function listenPostgres(url: string, channel: string, listener: Listener, logger: Logger): Promise<() => Promise<void>> {
  let client: pg.Client | null = null;
  let stopped = false;
  let pause = 100;
  let retry: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;

  const down = (err?: Error) => {
    if (stopped) return;
    if (err) logger.warn({ err, channel }, 'change feed connection lost; caches are bypassed until it is back');
    listener.onLive(false);
    clearInterval(heartbeat);
    // Ended without listeners, a dying connection's late `error` would be uncaught.
    client?.removeAllListeners().on('error', () => {});
    client?.end().catch(() => {});
    client = null;
    retry = setTimeout(connect, pause);
    retry.unref();
    pause = Math.min(pause * 2, 5000);
  };

  // A half-open connection raises no error: ask it something now and then, and give up on
  // it (caches bypassed, reconnect) when it does not answer in time.
  const beat = (beating: pg.Client) => {
    const timeout = setTimeout(() => client === beating && down(new Error('change feed heartbeat timed out')), HEARTBEAT_TIMEOUT_MS);
    beating.query('select 1').then(
      () => clearTimeout(timeout),
      (err: Error) => {
        clearTimeout(timeout);
        if (client === beating) down(err);
      },
    );
  };

  async function connect() {
    if (stopped) return;
    const next = new pg.Client({ connectionString: url, application_name: 'billing-service-changes', keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    client = next;
    next.on('error', (err) => (client === next ? down(err) : undefined));
    next.on('end', () => (client === next ? down(new Error('connection ended')) : undefined));
    next.on('notification', (msg) => {
      if (msg.channel === channel && msg.payload) listener.onPayload(msg.payload);
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (client !== next || stopped) return;
      pause = 100;
      heartbeat = setInterval(() => beat(next), HEARTBEAT_EVERY_MS);
      heartbeat.unref();
      listener.onLive(true);
    } catch (err) {
      if (client === next) down(err as Error);
    }
  }

  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    clearInterval(heartbeat);
    listener.onLive(false);
    const last = client;
    client = null;
    last?.removeAllListeners().on('error', () => {});
    await last?.end().catch(() => {});
  };
}

/** Applies migrations/ under an advisory lock, so two runs at once are safe. */
export async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'billing-service-migrate' });
  client.on('error', () => {}); // a lost connection fails the statement in flight, which is what reports it
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migratePg(drizzlePg(client), { migrationsFolder });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}

export class DataDirInUseError extends Error {}

/**
 * The embedded database: PGlite allows one process per data directory (two processes on
 * one directory lose writes), so a pid file refuses a second process with a clear message.
 */
export async function openPGlite(dataDir: string, logger: Logger): Promise<Database> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const releaseLock = lockDataDir(dir);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const { drizzle } = await import('drizzle-orm/pglite');
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    const client = await PGlite.create(await preparedDataDir(PGlite, join(dir, 'pglite'), logger));
    const pgliteDb = drizzle(client, { schema });
    logger.info({ dataDir: dir }, 'using the embedded PGlite database');
    return {
      db: pgliteDb as unknown as Db,
      kind: 'pglite',
      ping: async () => {
        await client.query('select 1');
      },
      migrate: () => migrate(pgliteDb, { migrationsFolder }),
      // One process owns the data directory, so notifications raised by its own queries are all there is.
      listen: async (channel, listener) => {
        const unlisten = await client.listen(channel, (payload) => listener.onPayload(payload));
        listener.onLive(true);
        return async () => {
          listener.onLive(false);
          await unlisten();
        };
      },
      close: async () => {
        await client.close();
        releaseLock();
      },
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}

/**
 * A new data directory starts from the seed that `npm ci` made for this PGlite release
 * (scripts/pglite-seed.mjs): loading it takes about a second where PGlite's own initdb takes 6
 * to 10. It is unpacked beside the target and renamed into place, so a start killed halfway
 * leaves no half-made cluster. Without a seed, PGlite runs initdb as before.
 */
async function preparedDataDir(pglite: typeof import('@electric-sql/pglite').PGlite, path: string, logger: Logger): Promise<string> {
  if (existsSync(path)) return path;
  let seed: Buffer;
  try {
    const { version } = JSON.parse(readFileSync(join(projectRoot, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string };
    seed = readFileSync(join(projectRoot, `node_modules/.cache/billing-service/pglite-seed-${version}.tar.gz`));
  } catch {
    return path;
  }
  const scratch = `${path}.new-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  try {
    const client = await pglite.create(scratch, { loadDataDir: new Blob([seed]) });
    await client.close();
    renameSync(scratch, path);
  } catch (err) {
    logger.warn({ err }, 'could not load the embedded database seed; initialising the data directory instead');
    rmSync(scratch, { recursive: true, force: true });
  }
  return path;
}

function lockDataDir(dir: string): () => void {
  const lockPath = join(dir, 'billing-service.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lockPath, 'utf8').trim());
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new DataDirInUseError(
          `The embedded database in ${dir} is in use by process ${holder}. PGlite allows one process per data directory: ` +
            'run api and worker together with `npm start`, stop the other process, or set DATABASE_URL to use Postgres.',
        );
      }
      rmSync(lockPath, { force: true }); // stale: its process is gone
    }
  }
  throw new DataDirInUseError(`Could not lock the embedded database in ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
