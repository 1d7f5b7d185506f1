import { startApi } from './api.js';
import { runProcess } from './runtime.js';

/** The api alone (`node dist/server.js`): stateless, run as many as needed. */
await runProcess('api', startApi);
