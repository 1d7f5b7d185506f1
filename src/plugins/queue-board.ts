import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError } from '../lib/errors.js';
import { sendProblem, toProblem } from './errors.js';
import type { Queues } from '../jobs/registry.js';
import { grants, parseBearer } from '../modules/auth/domain.js';
import type { AuthService } from '../modules/auth/service.js';

export const QUEUE_BOARD_PATH = '/admin/queues';

/**
 * bull-board over every queue of the service, for operators only: an ops-scoped key as
 * `Authorization: Bearer` (put it in front with a proxy that adds the header for browsers).
 */
export async function queueBoard(app: FastifyInstance, opts: { queues: Queues; auth: AuthService; redis?: Pick<Redis, 'status'> }) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({ queues: Object.values(opts.queues).map((q) => new BullMQAdapter(q)), serverAdapter });
  await app.register(
    async (scope) => {
      // Not part of the API: keep it out of the OpenAPI document.
      scope.addHook('onRoute', (route) => {
        route.schema = { ...route.schema, hide: true };
      });
      // Answered here rather than thrown: bull-board's routes have an error handler of their own.
      scope.addHook('onRequest', async (request, reply) => {
        const key = parseBearer(request.headers.authorization);
        const principal = key ? await opts.auth.authenticate(key) : null;
        if (!principal) return sendProblem(reply, toProblem(new AppError('unauthenticated', 'The queue board needs an ops API key'), request));
        if (!grants(principal.scopes, 'ops') || principal.accountId) {
          return sendProblem(reply, toProblem(new AppError('insufficient_scope', 'The queue board needs the ops scope'), request));
        }
        // The board is Redis's view: without Redis, say so rather than bull-board's own 500.
        if (opts.redis && opts.redis.status !== 'ready') {
          reply.header('retry-after', '5');
          return sendProblem(reply, toProblem(new AppError('service_unavailable', 'Redis does not answer: the queue board shows it again when it is back'), request));
        }
      });
      await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
    },
  );
}
