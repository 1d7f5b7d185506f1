import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../lib/errors.js';
import { decodeCursor } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { apiKeyListSchema, apiKeyParamsSchema, apiKeySchema, createApiKeyBodySchema, createdApiKeySchema, listApiKeysQuerySchema } from './schemas.js';
import { InvalidKeyRequest, type AuthService } from './service.js';

const tags = ['API keys'];

/** An insert naming an account that does not exist: the foreign key says so. */
const isMissingAccount = (err: unknown): boolean => (err as { cause?: { code?: string } }).cause?.code === '23503' || (err as { code?: string }).code === '23503';

/**
 * API keys over HTTP (ops): what `npm run keys:create` and `ops keys:revoke` do, while the
 * service runs (the embedded database admits no second process).
 */
export const apiKeyRoutes: FastifyPluginAsyncZod<{ auth: AuthService }> = async (app, { auth }) => {
  app.post(
    '/v1/api-keys',
    {
      // Audited by the service, in the transaction that makes the key (once, even when replayed).
      config: { scope: 'ops', idempotency: 'optional' },
      schema: {
        tags,
        operationId: 'createApiKey',
        summary: 'Make an API key',
        description:
          'The secret (`key`) is in this response only: the service keeps a keyed hash of it, and neither logs nor audits it. ' +
          'With an `Idempotency-Key`, a retry answers the same key (same `id`) without its secret, since the secret is stored ' +
          'nowhere, not even for replays: a caller whose first response was lost revokes that key and makes another. ' +
          'A key bound to an account (`accountId`) may have only the `read` and `write` scopes. The creation is audited ' +
          '(`api_key.create`: name, scopes and prefix).',
        body: createApiKeyBodySchema,
        response: {
          201: createdApiKeySchema,
          ...errorResponses({ 404: 'No such account (`account_not_found`)', 409: 'A request with this Idempotency-Key is running (`idempotency_request_in_progress`)', 422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)' }),
        },
      },
    },
    async (request, reply) => {
      const { name, scopes, accountId } = request.body;
      try {
        const key = await auth.createApiKey({
          name,
          scopes: [...new Set(scopes)],
          accountId: accountId ?? null,
          actor: principalOf(request).keyId,
          requestId: String(request.id),
          idempotency: request.idempotency,
        });
        return reply.status(201).send(key);
      } catch (err) {
        if (err instanceof InvalidKeyRequest) throw new AppError('validation_failed', err.message, { errors: [{ path: 'body.scopes', message: err.message }] });
        if (accountId && isMissingAccount(err)) throw new AppError('account_not_found', `No account ${accountId}`);
        throw err;
      }
    },
  );

  app.get(
    '/v1/api-keys',
    {
      config: { scope: 'ops', audit: 'api_key.list' },
      schema: {
        tags,
        operationId: 'listApiKeys',
        summary: 'List API keys, newest first',
        description: 'Every key, revoked ones included (`revokedAt`), with its prefix to recognise it: never a secret or a hash.',
        querystring: listApiKeysQuerySchema,
        response: { 200: apiKeyListSchema, ...errorResponses() },
      },
    },
    async (request) => auth.listApiKeys({ accountId: request.query.accountId, before: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.delete(
    '/v1/api-keys/:keyId',
    {
      config: { scope: 'ops', audit: 'api_key.revoke' },
      schema: {
        tags,
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key',
        description:
          'The key is refused from the next request on, by every api process. The key stays listed, with `revokedAt`; revoking ' +
          'it again answers it unchanged. A key may revoke itself, unless it is the last active ops key: without one, no key ' +
          'could be made while the service runs (409 `last_ops_key`; make another ops key first).',
        params: apiKeyParamsSchema,
        response: {
          200: apiKeySchema,
          ...errorResponses({ 404: 'No such API key (`api_key_not_found`)', 409: 'The last active ops key (`last_ops_key`)' }),
        },
      },
    },
    async (request) => auth.revokeApiKey(request.params.keyId),
  );
};
