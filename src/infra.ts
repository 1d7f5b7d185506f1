import { Cluster, Redis } from 'ioredis';
import { migratesOnStart, type Config } from './config.js';
import { openPGlite, openPostgres, type Database } from './db/client.js';
import { schemaBehindMessage, schemaVersion } from './db/schema-version.js';
import type { Logger } from './lib/logger.js';
import { isCluster, isClusterUrl, mastersOf, parseClusterUrl, redisAnswers, type RedisClient } from './lib/redis.js';

/** A start-up failure whose message alone tells the operator what to do. */
export class StartupError extends Error {}

export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  const database = config.DATABASE_URL
    ? openPostgres(config.DATABASE_URL, config.DATABASE_POOL_SIZE, logger)
    : await openPGlite(config.DATA_DIR, logger);
  try {
    await database.ping();
  } catch (err) {
    await database.close().catch(() => {});
    throw new StartupError(`Postgres does not answer at ${redactUrl(config.DATABASE_URL ?? '')}: ${(err as Error).message}`);
  }
  if (migratesOnStart(config)) {
    await database.migrate();
    logger.info('migrations applied');
  }
  // An api or worker on a schema it does not know would fail on every request: refuse to start.
  const version = await schemaVersion(database.db);
  if (version.missing) {
    await database.close().catch(() => {});
    throw new StartupError(schemaBehindMessage(version));
  }
  return database;
}

/**
 * The connection for everything but BullMQ's workers: enqueueing, rate limits, job
 * statistics, readiness. It fails fast while Redis is away (no offline queue, one retry, a
 * command timeout) so nothing that can do without Redis waits for it; it reconnects by
 * itself. Workers take a blocking duplicate (workerConnection). Start-up fails with one line
 * when no Redis answers, rather than retrying forever in silence. A redis+cluster:// URL
 * gives a Cluster with the same behaviour on each of its node connections.
 */
export async function connectRedis(url: string, opts: { orStartWithout?: Logger } = {}): Promise<RedisClient> {
  const redis = createRedisClient(url);
  redis.on('error', () => {}); // connection errors surface through commands and readiness
  try {
    await redis.connect();
    await redisAnswers(redis);
    return redis;
  } catch {
    const what = isCluster(redis) ? 'Redis Cluster' : 'Redis';
    const message = `${what} does not answer at ${redactUrl(url)}: start one (e.g. \`redis-server\`) or set REDIS_URL to a reachable Redis`;
    if (!opts.orStartWithout) {
      redis.disconnect();
      throw new StartupError(message);
    }
    // A process (re)started during an outage still serves: the client keeps reconnecting.
    opts.orStartWithout.warn(`${message}. Starting without it: the api answers from Postgres; jobs wait until Redis answers`);
    return redis;
  }
}

const retryStrategy = (attempt: number) => Math.min(attempt * 200, 2000);
const failFast = { connectTimeout: 3000, maxRetriesPerRequest: 1, commandTimeout: 2000 } as const;

function createRedisClient(url: string): RedisClient {
  if (!isClusterUrl(url)) return new Redis(url, { ...failFast, lazyConnect: true, enableOfflineQueue: false, retryStrategy });
  const cluster = parseClusterUrl(url);
  if (typeof cluster === 'string') throw new StartupError(`REDIS_URL ${cluster}`);
  return new Cluster(cluster.nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: retryStrategy,
    // With TLS the nodes' certificates name the hosts the nodes announce by address: keep the name.
    ...(cluster.tls ? { dnsLookup: (address: string, done: (err: Error | null, address: string) => void) => done(null, address) } : {}),
    redisOptions: {
      ...failFast,
      ...(cluster.username ? { username: cluster.username } : {}),
      ...(cluster.password ? { password: cluster.password } : {}),
      ...(cluster.tls ? { tls: {} } : {}),
    },
  });
}

/**
 * BullMQ workers need a connection that waits for Redis instead of failing (they block on
 * it and retry by themselves): the same server or cluster, with the offline queue and no timeouts.
 */
export function workerConnection(redis: RedisClient): RedisClient {
  if (!isCluster(redis)) return redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
  // Cluster.duplicate merges options shallowly: the node options are given whole. No offline
  // queue on a cluster: BullMQ reconnects a blocking cluster connection itself, and a blocking
  // command parked in the offline queue during that reconnect kept Worker.close() waiting
  // forever (4 of 7 tries after a master's outage; none of 11 without the offline queue).
  return redis.duplicate(undefined, {
    enableOfflineQueue: false,
    redisOptions: { ...redis.options.redisOptions, maxRetriesPerRequest: null, commandTimeout: undefined },
  });
}

const redactUrl = (url: string) => url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');

/**
 * BullMQ needs Redis to keep every key: with an eviction policy, jobs vanish under memory
 * pressure. Production refuses to start on such a Redis; elsewhere a loud warning. On a
 * cluster every master is asked (each holds part of the keys).
 */
export async function checkRedisPolicy(redis: RedisClient, production: boolean, logger: Logger): Promise<'noeviction' | string> {
  const policies: string[] = [];
  try {
    for (const server of mastersOf(redis)) {
      const reply = (await server.config('GET', 'maxmemory-policy')) as string[];
      policies.push(reply[1] ?? 'unknown');
    }
  } catch {
    logger.warn('could not read Redis maxmemory-policy (CONFIG is disabled?): make sure it is noeviction');
    return 'unknown';
  }
  const policy = policies.find((p) => p !== 'noeviction') ?? (policies.length ? 'noeviction' : 'unknown');
  if (policy !== 'noeviction') {
    const where = isCluster(redis) ? ` on ${policies.filter((p) => p !== 'noeviction').length} of ${policies.length} cluster masters` : '';
    const message = `Redis maxmemory-policy is ${policy}${where}; BullMQ needs noeviction or queued jobs can be evicted (redis-cli config set maxmemory-policy noeviction)`;
    if (production) throw new StartupError(message);
    logger.warn(message);
  }
  return policy;
}
