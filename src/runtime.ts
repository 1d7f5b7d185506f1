import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadConfig, usesEmbeddedDatabase, type Config } from './config.js';
import { DataDirInUseError, type Database } from './db/client.js';
import { checkRedisPolicy, connectRedis, openDatabase, StartupError } from './infra.js';
import { systemClock, type Clock } from './lib/clock.js';
import { isCluster, type RedisClient } from './lib/redis.js';
import { createLogger, type Logger } from './lib/logger.js';
import { createQueues, closeQueues, type Queues } from './jobs/registry.js';
import { createServices } from './services.js';

/** What every process shares: config, logger, database, Redis, queues, clock. */
export interface Runtime {
  config: Config;
  logger: Logger;
  database: Database;
  redis: RedisClient;
  queues: Queues;
  clock: Clock;
}

export async function openRuntime(config: Config, logger: Logger): Promise<Runtime & { close(): Promise<void> }> {
  // Redis first: it is cheap to check. Without it the process starts all the same (an api
  // restarted during a Redis outage must still serve), and checks its policy once it answers.
  const redis = await connectRedis(config.REDIS_URL, { orStartWithout: logger });
  // Every key under one hash tag: BullMQ's scripts and the rate limiter's stay in one slot.
  if (isCluster(redis)) logger.info({ keyPrefix: config.QUEUE_PREFIX }, `Redis Cluster: every key of the service is under ${config.QUEUE_PREFIX}: (one hash slot)`);
  let database: Database;
  try {
    const production = config.NODE_ENV === 'production';
    if (redis.status === 'ready') await checkRedisPolicy(redis, production, logger);
    else redis.once('ready', () => void checkRedisPolicy(redis, false, logger).catch(() => {}));
    database = await openDatabase(config, logger);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const queues = createQueues(redis, config.QUEUE_PREFIX);
  return {
    config,
    logger,
    database,
    redis,
    queues,
    clock: systemClock,
    async close() {
      await closeQueues(queues);
      await redis.quit().catch(() => redis.disconnect());
      await database.close();
    },
  };
}

/**
 * Makes the first ops key on an empty embedded database and registers BOOTSTRAP_API_KEY,
 * so a newcomer can call the API right after `npm start`. The key is shown once, on stderr.
 */
export async function bootstrapKeys(runtime: Runtime): Promise<void> {
  const { auth } = createServices(runtime);
  if (runtime.config.BOOTSTRAP_API_KEY) {
    if (await auth.registerBootstrapKey(runtime.config.BOOTSTRAP_API_KEY)) runtime.logger.info('BOOTSTRAP_API_KEY registered as an ops key');
    return;
  }
  if (!usesEmbeddedDatabase(runtime.config)) return;
  const created = await auth.createFirstOpsKeyIfNone();
  if (created) {
    process.stderr.write(
      `\n  First ops API key (shown once, store it now):\n\n    ${created.key}\n\n` +
        `  Try: curl -H 'Authorization: Bearer ${created.key}' http://localhost:${runtime.config.PORT}/v1/plans\n\n`,
    );
  }
}

export const isMainModule = (metaUrl: string): boolean => {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
};

/**
 * Runs a process: parse the config (one readable line on failure), open the runtime, start,
 * and on SIGTERM/SIGINT drain and close within a grace period.
 */
export async function runProcess(name: string, start: (runtime: Runtime) => Promise<{ close(): Promise<void> }>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config).child({ process: name });
  let runtime: Awaited<ReturnType<typeof openRuntime>>;
  let started: { close(): Promise<void> };
  try {
    runtime = await openRuntime(config, logger);
    started = await start(runtime);
  } catch (err) {
    if (err instanceof StartupError || err instanceof DataDirInUseError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'closing after an error');
    else logger.info({ signal }, 'closing');
    await started.close();
    await runtime.close();
  });
}
