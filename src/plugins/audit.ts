import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../db/client.js';
import { retryOnConnectionError } from '../db/errors.js';
import type { Clock } from '../lib/clock.js';
import { recordAudit } from '../modules/audit/repo.js';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Record successful calls of this route in the audit log under this action name. */
    audit?: string;
  }
}

type Json = Record<string, unknown> | undefined;

/** The account a call concerned: from the path, the body, or the answer. */
function accountOf(params: Json, body: Json, response: Json): string | null {
  const pick = (v: unknown) => (typeof v === 'string' && v.startsWith('acc_') ? v : null);
  return (
    pick(params?.accountId) ??
    pick(body?.accountId) ??
    pick(response?.accountId) ??
    pick((response?.account as Json)?.id) ??
    pick((response?.subscription as Json)?.accountId) ??
    null
  );
}

/**
 * The audit log of ops actions and of changes to money and plans: who (the key), what (the
 * action, its parameters and body, secrets redacted), when, the request id and the outcome.
 * Written when the route answered 2xx.
 */
export default fp(
  async function auditPlugin(app: FastifyInstance, opts: { db: Db; clock: Clock }) {
    // Only audited routes pay for the hook.
    app.addHook('onRoute', (route) => {
      if (route.config?.audit) route.onSend = [...hooksOf(route.onSend), record];
    });

    async function record(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
      const action = request.routeOptions.config.audit;
      if (!action || !request.principal || reply.statusCode >= 300) return payload;
      let response: Json;
      try {
        response = typeof payload === 'string' && payload ? JSON.parse(payload) : undefined;
      } catch {
        response = undefined;
      }
      const actorKeyId = request.principal.keyId;
      const params = request.params as Json;
      const body = request.body as Json;
      try {
        await retryOnConnectionError(() => recordAudit(opts.db, {
          at: opts.clock.now(),
          actorKeyId,
          action,
          accountId: accountOf(params, body, response),
          target: typeof response?.id === 'string' ? response.id : (Object.values(params ?? {}).find((v) => typeof v === 'string') as string | undefined) ?? null,
          requestId: String(request.id),
          status: reply.statusCode,
          details: { params: params ?? {}, body: body ?? {} },
        }));
      } catch (err) {
        request.log.error({ err, action }, 'could not write the audit event');
      }
      return payload;
    }
  },
  { name: 'audit', dependencies: ['auth'] },
);
