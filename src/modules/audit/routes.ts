import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { decodeCursor, page, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { listAudit } from './repo.js';

const auditEventSchema = z.object({
  id: z.number().int(),
  at: z.date(),
  actorKeyId: z.string().meta({ description: 'The API key that acted (or cli / bootstrap)' }),
  action: z.string(),
  accountId: z.string().nullable(),
  target: z.string().nullable(),
  requestId: z.string().nullable(),
  status: z.number().int().nullable(),
  details: z.record(z.string(), z.unknown()).meta({ description: 'Parameters and body of the call; payment instruments and secrets redacted' }),
});

export const auditRoutes: FastifyPluginAsyncZod<{ db: Db }> = async (app, { db }) => {
  app.get(
    '/v1/audit-events',
    {
      config: { scope: 'ops' },
      schema: {
        tags: ['Operations'],
        operationId: 'listAuditEvents',
        summary: 'The audit log: ops actions and changes to money and plans (ops)',
        querystring: paginationQuerySchema.extend({ accountId: z.string().regex(/^acc_[0-9a-z]{26}$/).optional() }),
        response: {
          200: z
            .object({ data: z.array(auditEventSchema), nextCursor: z.string().nullable() })
            .meta({
              id: 'AuditEventList',
              examples: [
                {
                  data: [
                    {
                      id: 42,
                      at: '2026-11-26T10:00:00.000Z',
                      actorKeyId: 'key_01kb2m3n4p5q6r7s8t9v0w1x2y',
                      action: 'credits.adjust',
                      accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
                      target: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
                      requestId: 'req-1a2b3c',
                      status: 201,
                      details: { body: { amount: 5000, reason: 'Goodwill for the outage' } },
                    },
                  ],
                  nextCursor: null,
                },
              ],
            }),
          ...errorResponses(),
        },
      },
    },
    async (request) => {
      const cursor = decodeCursor(request.query.cursor);
      const rows = await listAudit(db, { accountId: request.query.accountId, before: cursor ? Number(cursor) : undefined, limit: request.query.limit + 1 });
      return page(rows, request.query.limit, (r) => String(r.id));
    },
  );
};
