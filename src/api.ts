import { buildApp } from './app.js';
import { bootstrapKeys, type Runtime } from './runtime.js';

/** The api alone: listen, and close gracefully (in-flight requests finish first). */
export async function startApi(runtime: Runtime) {
  await bootstrapKeys(runtime);
  const app = await buildApp(runtime);
  await app.listen({ host: runtime.config.HOST, port: runtime.config.PORT });
  return { close: () => app.close() };
}

