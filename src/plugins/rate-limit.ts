import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { AppError } from '../lib/errors.js';
import { CoalescingRedisStore } from './rate-limit-store.js';

/**
 * OWASP API4: a request budget per API key and minute, counted in Redis so every api process
 * shares it, across all routes of its class. The hot paths (authorize, usage) have a budget of their own. Over it: 429
 * problem+json with Retry-After and the RateLimit-* headers.
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance, opts: { redis: Redis; prefix: string; perMinute: number; hotPerMinute: number }) {
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler', // after authentication: the budget belongs to the key
      // Counted in Redis (shared by every api process) without a round trip per request; see the store.
      store: class extends CoalescingRedisStore {
        constructor() {
          super(opts.redis, `${opts.prefix}:rate-limit:`);
        }
      },
      timeWindow: 60_000,
      enableDraftSpec: true,
      allowList: (request) => !request.url.startsWith('/v1'),
      max: (request) => (request.routeOptions.config.hot ? opts.hotPerMinute : opts.perMinute),
      keyGenerator: (request) => `${request.principal?.keyId ?? request.ip}:${request.routeOptions.config.hot ? 'hot' : 'api'}`,
      errorResponseBuilder: (_request, context) =>
        Object.assign(new AppError('rate_limited', `More than ${context.max} requests a minute; retry in ${context.after}`), { statusCode: 429 }),
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);
