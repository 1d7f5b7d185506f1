import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { FailureBudget } from '../lib/failure-budget.js';
import { grants, parseBearer, type Scope } from '../modules/auth/domain.js';
import type { AuthService, Principal } from '../modules/auth/service.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The scope a /v1 route needs; every /v1 route must name one. */
    scope?: Scope;
    /** A hot path (called per call or message): its own, higher rate limit. */
    hot?: boolean;
  }
}

/** The authenticated caller; only call on routes behind the auth hook. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthenticated');
  return request.principal;
}

/**
 * A key bound to one account sees nothing of another: the same 404 as a missing account,
 * so ids of other accounts cannot be probed.
 */
export function assertAccountVisible(principal: Principal, accountId: string): void {
  if (principal.accountId && principal.accountId !== accountId) {
    throw new AppError('account_not_found', `No account ${accountId}`);
  }
}

export function assertUnboundKey(principal: Principal): void {
  if (principal.accountId) throw new AppError('account_bound_key');
}

/**
 * The bearer check every keyed surface shares: the principal of the request's key, or
 * `unauthenticated` (the errors plugin adds WWW-Authenticate). Unknown keys are never cached,
 * so each guess costs a lookup: an address past its failures this minute is refused before
 * it, unless its key is one this process knows. Each caller keeps its own failure budget.
 */
export function bearerGate(opts: { auth: AuthService; failuresPerMinute: number; clock: Clock }) {
  const failures = new FailureBudget({ perWindow: opts.failuresPerMinute, now: () => opts.clock.now().getTime() });
  return async (request: FastifyRequest, reply: FastifyReply, unauthenticated: string): Promise<Principal> => {
    const key = parseBearer(request.headers.authorization);
    const wait = failures.retryAfter(request.ip);
    if (wait > 0 && !(key && opts.auth.isKnown(key))) {
      reply.header('retry-after', String(wait));
      throw new AppError('rate_limited', `Too many failed authentications from this address; retry in ${wait} s`);
    }
    const principal = key ? await opts.auth.authenticate(key) : null;
    if (!principal) {
      failures.fail(request.ip);
      throw new AppError('unauthenticated', unauthenticated);
    }
    return principal;
  };
}

export default fp(
  async function authPlugin(app: FastifyInstance, opts: { auth: AuthService; failuresPerMinute: number; clock: Clock }) {
    app.decorateRequest('principal', null);
    const authenticate = bearerGate(opts);

    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith('/v1')) return;
      const scope = route.config?.scope;
      if (!scope) throw new Error(`route ${String(route.method)} ${route.url} names no scope`);
      // OpenAPI 3.1 lets a bearer requirement list the roles it needs: the scope, documented.
      route.schema = { ...route.schema, security: [{ bearerAuth: [scope] }] };
    });

    // 401, then 404 for another account's id, then 403: a bound key learns nothing of
    // other accounts, whatever the route and whatever its scope.
    app.addHook('onRequest', async (request, reply) => {
      const scope = request.routeOptions.config.scope;
      if (!scope) return;
      const principal = await authenticate(request, reply, 'Send a valid API key as `Authorization: Bearer <key>`');
      const params = request.params as { accountId?: string } | undefined;
      if (params?.accountId) assertAccountVisible(principal, params.accountId);
      if (!grants(principal.scopes, scope)) {
        throw new AppError('insufficient_scope', `This operation needs the ${scope} scope`);
      }
      request.principal = principal;
    });
  },
  { name: 'auth', dependencies: ['errors'] },
);
