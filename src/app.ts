import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { secretsKeysOf, type Config } from './config.js';
import type { Database } from './db/client.js';
import { AppError } from './lib/errors.js';
import { schemaVersion } from './db/schema-version.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { redisAnswers, type RedisClient } from './lib/redis.js';
import { errorResponses } from './lib/problem.js';
import { accountsRoutes } from './modules/accounts/routes.js';
import { billingRoutes } from './modules/billing/routes.js';
import { catalogRoutes } from './modules/catalog/routes.js';
import { upgradeRoutes } from './modules/upgrade/routes.js';
import { paymentRoutes } from './modules/payments/routes.js';
import { creditNoteRoutes } from './modules/credit-notes/routes.js';
import { subscriptionRoutes } from './modules/subscriptions/routes.js';
import { testClockRoutes } from './modules/test-clocks/routes.js';
import { creditsRoutes } from './modules/credits/routes.js';
import { exophonesRoutes } from './modules/exophones/routes.js';
import { authorizationRoutes } from './modules/authorization/routes.js';
import { holdsRoutes } from './modules/holds/routes.js';
import { webhookRoutes } from './modules/webhooks/routes.js';
import { apiKeyRoutes } from './modules/auth/routes.js';
import authPlugin from './plugins/auth.js';
import errorsPlugin, { clientErrorHandler, frameworkErrorHandler } from './plugins/errors.js';
import idempotencyPlugin from './plugins/idempotency.js';
import rateLimitPlugin from './plugins/rate-limit.js';
import auditPlugin from './plugins/audit.js';
import { auditRoutes } from './modules/audit/routes.js';
import metricsPlugin from './plugins/metrics.js';
import openapiPlugin from './plugins/openapi.js';
import { queueBoard } from './plugins/queue-board.js';
import type { Queues } from './jobs/registry.js';
import { createServices } from './services.js';
import { openChangeFeed, type ChangeFeed } from './db/change-feed.js';
import type { PaymentProvider } from './modules/payments/provider.js';
import { version } from './version.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The change feed behind this app's caches (tests use its sync() as a barrier). */
    changes: ChangeFeed;
  }
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  database: Database;
  redis: RedisClient;
  clock: Clock;
  provider?: PaymentProvider;
  /** The queues, for the ops queue board; without them there is no board. */
  queues?: Queues;
}

const requestIdPattern = /^[\w.:-]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
}

/** The whole HTTP application; server.ts listens on it and tests inject into it. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: requestIdOf,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true },
    trustProxy: deps.config.TRUST_PROXY,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // While closing, requests on kept-alive connections get our own 503 problem (below), not fastify's plain JSON.
    return503OnClosing: false,
  }).withTypeProvider<ZodTypeProvider>();
  // The hot paths (authorize, usage, holds: a call each per phone call or message) write no
  // request log lines at info: at tens of thousands a second those two lines a request doubled
  // the api's CPU per call (bench: 69 against 29 us). /metrics counts their rate, latency and
  // status (authorize's answers by outcome too); their warnings and errors are logged, and debug or trace logs everything.
  const hotLogLevel = deps.config.LOG_LEVEL === 'info' ? 'warn' : deps.config.LOG_LEVEL;
  app.addHook('onRoute', (route) => {
    if (route.config?.hot && !route.logLevel) route.logLevel = hotLogLevel;
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a text body is 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');


  // The database announces every change the caches depend on; closed with the app.
  const changes = await openChangeFeed(deps.database, deps.logger);
  app.addHook('onClose', () => changes.close());
  app.decorate('changes', changes);
  // The services drop an account they changed from this process's caches themselves (see
  // accountChanged in services.ts), so a caller's next check sees its change at once.
  const services = createServices({ ...deps, changes });
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(new AppError('service_unavailable', 'This process is shutting down; retry, another will answer'));
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });

  await app.register(errorsPlugin);
  await app.register(metricsPlugin, {
    db: deps.database.db,
    redis: deps.redis,
    queues: deps.queues,
    prefix: deps.config.QUEUE_PREFIX,
    auth: services.auth,
    clock: deps.clock,
    failuresPerMinute: deps.config.AUTH_FAILURES_PER_MINUTE,
    usageStats: services.credits.usageStats,
    authorizeOutcomes: services.authorization.outcomes,
    cacheLive: () => changes.live,
  });
  await app.register(openapiPlugin, { version });
  await app.register(authPlugin, { auth: services.auth, failuresPerMinute: deps.config.AUTH_FAILURES_PER_MINUTE, clock: deps.clock });
  await app.register(rateLimitPlugin, {
    redis: deps.redis,
    prefix: deps.config.QUEUE_PREFIX,
    perMinute: deps.config.RATE_LIMIT_PER_MINUTE,
    hotPerMinute: deps.config.RATE_LIMIT_HOT_PER_MINUTE,
  });
  await app.register(idempotencyPlugin, { db: deps.database.db, clock: deps.clock, secretsKeys: secretsKeysOf(deps.config) });
  await app.register(auditPlugin, { db: deps.database.db, clock: deps.clock });

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['Operations'],
        operationId: 'healthz',
        summary: 'Liveness: the process answers',
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['Operations'],
        operationId: 'readyz',
        summary: 'Readiness: Postgres answers on a schema this build knows (Redis reported, not required)',
        description:
          'Ready (200) while Postgres answers and has every migration this build expects (`schema`): everything the api serves ' +
          'needs only Postgres. Without Redis the answer is 200 with `status: degraded` (rate limits per process; the workers ' +
          'catch up when it is back); on a Redis Cluster, Redis is `ok` only while the cluster reports `cluster_state:ok`. 503 without Postgres, or with its schema behind (run `npm run migrate`).',
        security: [],
        response: {
          200: z.object({ status: z.enum(['ready', 'degraded']), checks: z.record(z.string(), z.enum(['ok', 'failed'])) }),
          503: errorResponses()[500]!,
        },
      },
    },
    async (request, reply) => {
      const checks = await readiness(deps);
      if (checks.postgres === 'ok' && checks.schema === 'ok') {
        if (checks.redis === 'ok') return { status: 'ready' as const, checks };
        request.log.warn({ checks }, 'degraded: Redis does not answer');
        return { status: 'degraded' as const, checks };
      }
      request.log.warn({ checks }, 'not ready');
      return reply
        .status(503)
        .type('application/problem+json')
        .send({
          type: 'urn:billing-service:problem:service_unavailable',
          title: 'A dependency is unavailable',
          status: 503,
          detail: Object.entries(checks)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', '),
          code: 'service_unavailable',
          requestId: String(request.id),
        });
    },
  );

  await app.register(catalogRoutes, { catalog: services.catalog });
  await app.register(accountsRoutes, { accounts: services.accounts });
  await app.register(upgradeRoutes, { upgrades: services.upgrades });
  await app.register(paymentRoutes, { payments: services.payments, methods: services.paymentMethods, invoicePayments: services.invoicePayments });
  await app.register(billingRoutes, { billing: services.billing });
  await app.register(creditNoteRoutes, { creditNotes: services.creditNotes, db: deps.database.db, clock: deps.clock });
  await app.register(subscriptionRoutes, { subscriptions: services.subscriptions });
  await app.register(testClockRoutes, { testClocks: services.testClocks });
  await app.register(creditsRoutes, { credits: services.credits, purchases: services.purchases, noteBalance: services.authorization.noteBalance });
  await app.register(exophonesRoutes, { exophones: services.exophones });
  await app.register(authorizationRoutes, { authorization: services.authorization, holds: services.holds });
  await app.register(holdsRoutes, { holds: services.holds });
  await app.register(webhookRoutes, { webhooks: services.webhooks });
  await app.register(apiKeyRoutes, { auth: services.auth });
  await app.register(auditRoutes, { db: deps.database.db });
  if (deps.queues) {
    await queueBoard(app, {
      queues: deps.queues,
      auth: services.auth,
      db: deps.database.db,
      clock: deps.clock,
      secretsKeys: secretsKeysOf(deps.config),
      production: deps.config.NODE_ENV === 'production',
      sessionHours: deps.config.ADMIN_SESSION_HOURS,
      failuresPerMinute: deps.config.AUTH_FAILURES_PER_MINUTE,
      redis: deps.redis,
    });
  }

  return app;
}

async function readiness(deps: AppDeps): Promise<Record<string, 'ok' | 'failed'>> {
  const within = <T>(p: Promise<T>) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref())]);
  const [postgres, redis, schema] = await Promise.allSettled([within(deps.database.ping()), within(redisAnswers(deps.redis)), within(schemaVersion(deps.database.db))]);
  return {
    postgres: postgres.status === 'fulfilled' ? 'ok' : 'failed',
    schema: schema.status === 'fulfilled' && schema.value.missing === null ? 'ok' : 'failed',
    redis: redis.status === 'fulfilled' ? 'ok' : 'failed',
  };
}
