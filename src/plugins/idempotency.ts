import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { retryOnConnectionError } from '../db/errors.js';
import type { SecretKey } from '../lib/secret-box.js';
import { createFingerprinter, HEARTBEAT_MS, judge, secondsUntilTakeOver } from '../modules/idempotency/domain.js';
import * as repo from '../modules/idempotency/repo.js';
import type { IdempotencyHandle } from '../modules/idempotency/repo.js';
import { principalOf } from './auth.js';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that create or charge take an Idempotency-Key header. */
    idempotency?: 'optional' | 'required';
  }
  interface FastifyRequest {
    idempotency: IdempotencyHandle | null;
  }
}

const keySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
  .meta({
    description:
      'Makes the request safe to retry: the same key and body within 24 h replays the first response ' +
      '(with `Idempotent-Replayed: true`); the same key with another body is 422 `idempotency_key_reused`; ' +
      'a retry while the first is still running is 409 `idempotency_request_in_progress` with `Retry-After` (a request that ' +
      'died, with its process or its database connection, frees its key within 10 s). Keys are per API key.',
    examples: ['0b6e2f1c-6c1e-4c59-9a53-2b8d9f0f3a11'],
  });

/**
 * Idempotency-Key handling (DESIGN: same key and body replays, another body is 422, a
 * concurrent duplicate 409, kept 24 h). Records live in Postgres; a record whose request
 * died mid-way is taken over by a retry after a lock timeout. Responses of 5xx, 202 and 409
 * are not kept, so a retry runs again. Money routes record their response inside their own
 * transaction (handle.completed), so a crash after the commit cannot make a retry run twice.
 */
export default fp(
  async function idempotencyPlugin(app: FastifyInstance, opts: { db: Db; clock: Clock; secretsKeys: readonly SecretKey[] }) {
    const { db, clock } = opts;
    const fingerprint = createFingerprinter(opts.secretsKeys);
    const heartbeats = new WeakMap<FastifyRequest, NodeJS.Timeout>();
    app.decorateRequest('idempotency', null);

    // Only the routes that take an Idempotency-Key pay for these hooks (not the hot paths).
    app.addHook('onRoute', (route) => {
      const mode = route.config?.idempotency;
      if (!mode) return;
      const header = mode === 'required' ? keySchema : keySchema.optional();
      route.schema = { ...route.schema, headers: z.looseObject({ 'idempotency-key': header }) };
      route.preHandler = [...hooksOf(route.preHandler), claimKey];
      route.onSend = [...hooksOf(route.onSend), recordResponse];
      // A request that never reaches onSend (the client went away) stops renewing all the same.
      route.onResponse = [...hooksOf(route.onResponse), async (request: FastifyRequest) => letGo(request)];
      route.onRequestAbort = [...hooksOf(route.onRequestAbort), async (request: FastifyRequest) => letGo(request)];
    });

    async function claimKey(request: FastifyRequest, reply: FastifyReply) {
      const mode = request.routeOptions.config.idempotency;
      const key = request.headers['idempotency-key'];
      if (!mode || typeof key !== 'string') {
        if (mode === 'required') throw new AppError('idempotency_key_required');
        return;
      }
      const id = { apiKeyId: principalOf(request).keyId, key };
      const path = request.url.split('?')[0]!;
      const { stored: requestHash, accepted } = fingerprint(request.method, path, request.body);
      const now = clock.now();
      const fresh = { requestHash, method: request.method, path, createdAt: now, lockedAt: now };

      if (await repo.claim(db, { ...id, ...fresh, state: 'in_progress' })) {
        hold(request, { ...id, lockedAt: now, completed: false });
        return;
      }
      const existing = await repo.find(db, id);
      const verdict = existing ? judge(existing, accepted, now) : 'in_progress';
      switch (verdict) {
        case 'mismatch':
          throw new AppError('idempotency_key_reused', `Idempotency-Key ${key} was first used with another request`);
        case 'replay':
          return reply
            .status(existing!.responseStatus!)
            .header('idempotent-replayed', 'true')
            .type(existing!.responseStatus! >= 400 ? 'application/problem+json' : 'application/json')
            .send(existing!.responseBody === null ? undefined : JSON.stringify(existing!.responseBody));
        case 'take_over':
          if (await repo.takeOver(db, id, existing!, fresh)) {
            hold(request, { ...id, lockedAt: now, completed: false });
            return;
          }
          reply.header('retry-after', '1');
          throw new AppError('idempotency_request_in_progress');
        default:
          // The holder renews its record while it runs; if it died, the record is free this many seconds from now.
          reply.header('retry-after', String(existing ? secondsUntilTakeOver(existing, now) : 1));
          throw new AppError('idempotency_request_in_progress', `A request with Idempotency-Key ${key} is still running; retry later`);
      }
    }

    /** This request holds the key: renew the record while it runs, so a retry waits for it, not for a timeout. */
    function hold(request: FastifyRequest, handle: IdempotencyHandle) {
      request.idempotency = handle;
      const timer = setInterval(() => {
        repo.heartbeat(db, handle, clock.now()).catch((err) => request.log.warn({ err }, 'could not renew the idempotency record'));
      }, HEARTBEAT_MS);
      timer.unref();
      heartbeats.set(request, timer);
    }

    function letGo(request: FastifyRequest) {
      clearInterval(heartbeats.get(request));
      heartbeats.delete(request);
    }

    async function recordResponse(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
      letGo(request);
      const handle = request.idempotency;
      if (!handle || handle.completed) return payload;
      request.idempotency = null;
      try {
        // A 503 says "retry with the same key": a connection lost with the request must not
        // leave the key locked, so this write gets a few tries of its own on a fresh connection.
        await retryOnConnectionError(async () => {
          // 202 ("not settled yet") and 409 (a conflict with the state of the moment): a retry must
          // run again to learn the outcome, and the same key with another body stays a 422.
          if (reply.statusCode === 202 || reply.statusCode === 409) await repo.unlock(db, handle);
          else if (reply.statusCode >= 500) await repo.release(db, handle);
          else await repo.complete(db, handle, reply.statusCode, typeof payload === 'string' && payload ? JSON.parse(payload) : null);
        });
      } catch (err) {
        request.log.error({ err }, 'could not record the idempotent response');
      }
      return payload;
    }
  },
  { name: 'idempotency', dependencies: ['auth'] },
);
