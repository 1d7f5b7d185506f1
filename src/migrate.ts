import { ConfigError, loadConfig } from './config.js';
import { migratePostgres } from './db/client.js';
import { openPGlite } from './db/client.js';
import { createLogger } from './lib/logger.js';

/** `npm run migrate`: applies migrations/ under an advisory lock (or to the embedded database). */
try {
  const config = loadConfig();
  const logger = createLogger(config);
  if (config.DATABASE_URL) {
    await migratePostgres(config.DATABASE_URL);
  } else {
    const database = await openPGlite(config.DATA_DIR, logger);
    try {
      await database.migrate();
    } finally {
      await database.close();
    }
  }
  logger.info('migrations applied');
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : `Migration failed: ${(err as Error).message}`}\n`);
  process.exit(1);
}
