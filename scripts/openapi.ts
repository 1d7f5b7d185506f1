/**
 * Writes openapi/openapi.json from the route schemas; with --check, fails when the committed
 * document differs from what the routes generate. Needs no database or Redis.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openPostgres } from '../src/db/client.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';

const target = new URL('../openapi/openapi.json', import.meta.url);

export async function generateOpenApi(): Promise<string> {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const logger = createLogger(config);
  // Never connected: the pool connects on first query and Redis is lazy.
  const database = openPostgres('postgres://openapi@127.0.0.1:1/openapi', 1, logger);
  const redis = new Redis({ lazyConnect: true });
  const app = await buildApp({ config, logger, database, redis, clock: systemClock });
  await app.ready();
  const doc = JSON.stringify(app.swagger(), null, 2) + '\n';
  await app.close();
  await database.close();
  redis.disconnect();
  return doc;
}

const doc = await generateOpenApi();
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // missing counts as drift
  }
  if (committed !== doc) {
    process.stderr.write('openapi/openapi.json is out of date with the routes: run `npm run openapi` and commit it\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json matches the routes\n');
} else {
  writeFileSync(target, doc);
  process.stdout.write('wrote openapi/openapi.json\n');
}
