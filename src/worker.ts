import { runProcess } from './runtime.js';
import { startWorkers } from './workers.js';

/** The BullMQ workers, the scheduler sweeps and the outbox relay alone (`node dist/worker.js`). */
await runProcess('worker', startWorkers);
