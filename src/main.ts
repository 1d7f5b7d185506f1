import { runProcess } from './runtime.js';
import { startApi } from './api.js';
import { startWorkers } from './workers.js';

/**
 * The development default: api and workers in one process. With the embedded database this
 * is the only way to run both, since PGlite allows one process per data directory.
 */
await runProcess('main', async (runtime) => {
  const workers = await startWorkers(runtime);
  const api = await startApi(runtime);
  return {
    async close() {
      await api.close();
      await workers.close();
    },
  };
});
