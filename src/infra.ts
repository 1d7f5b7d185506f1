import { Redis } from 'ioredis';
import { migratesOnStart, type Config } from './config.js';
import { openPGlite, openPostgres, type Database } from './db/client.js';
import type { Logger } from './lib/logger.js';

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
  return database;
}

/**
 * One connection shared by the api (readiness, enqueueing) and BullMQ. Start-up fails with
 * one line when no Redis answers, rather than retrying forever in silence.
 */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: 3000 });
  redis.on('error', () => {}); // connection errors surface through commands and readiness
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch {
    redis.disconnect();
    throw new StartupError(
      `Redis does not answer at ${redactUrl(url)}: start one (e.g. \`redis-server\`) or set REDIS_URL to a reachable Redis`,
    );
  }
}

const redactUrl = (url: string) => url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
