import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../db/client.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { FailureBudget } from '../lib/failure-budget.js';
import type { RedisClient } from '../lib/redis.js';
import type { SecretKey } from '../lib/secret-box.js';
import { sendProblem, toProblem } from './errors.js';
import type { Queues } from '../jobs/registry.js';
import { grants, parseBearer } from '../modules/auth/domain.js';
import type { AuthService } from '../modules/auth/service.js';
import { ADMIN_PATH, SESSION_COOKIE, cookieOf, createAdminSessions, isSameOrigin, pageHeaders, sessionCookie, signInPage, wantsHtml } from './admin-session.js';

export const QUEUE_BOARD_PATH = `${ADMIN_PATH}/queues`;
export const SIGN_IN_PATH = `${ADMIN_PATH}/sign-in`;

export interface QueueBoardOptions {
  queues: Queues;
  auth: AuthService;
  db: Db;
  clock: Clock;
  /** SECRETS_KEYS (or the development ring): the session cookie's HMAC keys derive from it. */
  secretsKeys: readonly SecretKey[];
  production: boolean;
  sessionHours: number;
  failuresPerMinute: number;
  redis?: Pick<RedisClient, 'status'>;
}

/**
 * bull-board over every queue of the service, for operators only. A script sends an ops key as
 * `Authorization: Bearer`; a browser signs in at /admin/sign-in with the key and gets a session
 * cookie (see admin-session.ts), and is sent there when it has none.
 */
export async function queueBoard(app: FastifyInstance, opts: QueueBoardOptions) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({ queues: Object.values(opts.queues).map((q) => new BullMQAdapter(q)), serverAdapter });
  const sessions = createAdminSessions({ ring: opts.secretsKeys, db: opts.db, now: () => opts.clock.now(), lifetimeSeconds: opts.sessionHours * 3600 });
  // Sign-in guesses count per address like bad bearer keys do (a budget of this plugin's own).
  const failures = new FailureBudget({ perWindow: opts.failuresPerMinute, now: () => opts.clock.now().getTime() });
  const secure = (request: FastifyRequest) => opts.production || request.protocol === 'https';

  await app.register(async (scope) => {
    // Not part of the API: keep it out of the OpenAPI document.
    scope.addHook('onRoute', (route) => {
      route.schema = { ...route.schema, hide: true };
    });
    // The sign-in form only: a few hundred bytes of `key=...`, parsed here, no dependency.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    const page = (reply: FastifyReply, status: number, content: Parameters<typeof signInPage>[0]) => reply.status(status).headers(pageHeaders).send(signInPage(content));

    scope.get(SIGN_IN_PATH, async (request, reply) => {
      const keyId = await sessions.verify(cookieOf(request, SESSION_COOKIE));
      return page(reply, 200, keyId ? { signedInAs: keyId } : {});
    });

    scope.post(SIGN_IN_PATH, async (request, reply) => {
      if (!isSameOrigin(request)) return page(reply, 403, { message: 'Sign in from this page: the request came from another site.' });
      // A Secure cookie sent over plain http would never come back: say why rather than loop.
      if (opts.production && request.protocol !== 'https') {
        return page(reply, 400, { message: 'Sign in over https (terminate TLS in front of the service and set TRUST_PROXY).' });
      }
      const wait = failures.retryAfter(request.ip);
      if (wait > 0) return page(reply.header('retry-after', String(wait)), 429, { message: `Too many failed sign-ins from this address; retry in ${wait} s.` });
      const key = (request.body as { key?: unknown } | undefined)?.key;
      const principal = typeof key === 'string' && key.length > 0 && key.length <= 512 ? await opts.auth.authenticate(key) : null;
      if (!principal) {
        failures.fail(request.ip);
        return page(reply, 401, { message: 'That key is not a valid API key.' });
      }
      if (!grants(principal.scopes, 'ops') || principal.accountId) return page(reply, 403, { message: 'That key lacks the ops scope.' });
      const session = sessions.issue(principal.keyId);
      request.log.info({ keyId: principal.keyId }, 'admin sign-in');
      return reply.header('set-cookie', sessionCookie(session.token, session.maxAge, secure(request))).redirect(QUEUE_BOARD_PATH, 303);
    });

    scope.post(`${ADMIN_PATH}/sign-out`, async (request, reply) => {
      if (!isSameOrigin(request)) return page(reply, 403, { message: 'Sign out from this page: the request came from another site.' });
      return reply.header('set-cookie', sessionCookie('', 0, secure(request))).redirect(SIGN_IN_PATH, 303);
    });

    await scope.register(async (board) => {
      // Answered here rather than thrown: bull-board's routes have an error handler of their own.
      board.addHook('onRequest', async (request, reply) => {
        const denied = await authorize(request);
        if (denied === 'sign-in') return reply.redirect(SIGN_IN_PATH, 303);
        if (denied) {
          reply.header('www-authenticate', 'Bearer realm="billing-service"');
          return sendProblem(reply, toProblem(denied, request));
        }
        // The board is Redis's view: without Redis, say so rather than bull-board's own 500.
        if (opts.redis && opts.redis.status !== 'ready') {
          reply.header('retry-after', '5');
          return sendProblem(reply, toProblem(new AppError('service_unavailable', 'Redis does not answer: the queue board shows it again when it is back'), request));
        }
      });
      await board.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
    });
  });

  /** null: let it through; 'sign-in': a browser without a session; else the refusal. */
  async function authorize(request: FastifyRequest): Promise<AppError | 'sign-in' | null> {
    const key = parseBearer(request.headers.authorization);
    if (key) {
      const principal = await opts.auth.authenticate(key);
      if (!principal) return new AppError('unauthenticated', 'The queue board needs an ops API key');
      if (!grants(principal.scopes, 'ops') || principal.accountId) return new AppError('insufficient_scope', 'The queue board needs the ops scope');
      return null;
    }
    const token = request.headers.authorization ? undefined : cookieOf(request, SESSION_COOKIE);
    if (token && (await sessions.verify(token))) {
      // bull-board's retry, clean and pause calls ride on the cookie: same origin only.
      const safe = request.method === 'GET' || request.method === 'HEAD';
      return safe || isSameOrigin(request) ? null : new AppError('insufficient_scope', 'The queue board takes changes from its own pages only');
    }
    if (wantsHtml(request)) return 'sign-in';
    return new AppError('unauthenticated', `The queue board needs an ops API key (Authorization: Bearer), or a browser session from ${SIGN_IN_PATH}`);
  }
}
