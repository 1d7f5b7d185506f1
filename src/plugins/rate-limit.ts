import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../lib/errors.js';
import type { RedisClient } from '../lib/redis.js';
import { LeasedRedisStore } from './rate-limit-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Whether rate limits are counted per process because Redis does not answer. */
    rateLimitDegraded(): boolean;
  }
}

/**
 * OWASP API4: a request budget per API key and minute, shared by every api process through
 * Redis, across all routes of its class. The hot paths (authorize, usage) have a budget of
 * their own. Over it: 429 problem+json with Retry-After and the RateLimit-* headers. Without
 * Redis the budget is counted per process (logged, and `billing_rate_limit_degraded` is 1).
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance, opts: { redis: RedisClient; prefix: string; perMinute: number; hotPerMinute: number }) {
    const store = new LeasedRedisStore(opts.redis, `${opts.prefix}:rate-limit:`, {
      onDegraded: (degraded, err) =>
        degraded
          ? app.log.warn({ err }, 'Redis does not answer: rate limits are counted per process until it does')
          : app.log.info('Redis answers again: rate limits are shared by all api processes again'),
    });
    app.decorate('rateLimitDegraded', () => store.health.degraded);
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler', // after authentication: the budget belongs to the key
      // The plugin constructs its store: hand it the one made above.
      store: function sharedStore() {
        return store;
      } as unknown as new () => LeasedRedisStore,
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
