import type { Db } from '../db/client.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { RETENTION_MS } from '../modules/idempotency/domain.js';
import { purgeOlderThan } from '../modules/idempotency/repo.js';

/**
 * Housekeeping that any number of workers may run at once: every step is a plain
 * idempotent delete. Today: idempotency records past their 24 hours.
 */
export function createMaintenance(deps: { db: Db; clock: Clock; logger: Logger; everyMs: number }) {
  let timer: NodeJS.Timeout | undefined;

  async function runOnce() {
    const purged = await purgeOlderThan(deps.db, new Date(deps.clock.now().getTime() - RETENTION_MS));
    if (purged) deps.logger.info({ purged }, 'purged expired idempotency records');
    return { idempotencyRecordsPurged: purged };
  }

  return {
    runOnce,
    start() {
      timer = setInterval(() => runOnce().catch((err) => deps.logger.error({ err }, 'maintenance failed')), deps.everyMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
