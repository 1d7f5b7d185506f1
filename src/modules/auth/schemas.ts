import { z } from 'zod';
import { paginationQuerySchema } from '../../lib/pagination.js';
import { accountIdSchema } from '../accounts/schemas.js';
import { scopeSchema } from './domain.js';

const keyExample = {
  id: 'key_01kb2m3n4p5q6r7s8t9v0w1x2y',
  name: 'kyc-service',
  prefix: 'bsk_Q3vZ8k',
  scopes: ['kyc'],
  accountId: null,
  createdAt: '2026-11-26T10:00:00.000Z',
  revokedAt: null,
};

export const apiKeyIdSchema = z
  .string()
  .regex(/^key_[0-9a-z]{26}$/, 'not an API key id')
  .meta({ description: 'API key id', examples: [keyExample.id] });

export const apiKeyParamsSchema = z.object({ keyId: apiKeyIdSchema });

const scopes = z
  .array(scopeSchema)
  .min(1)
  .max(4)
  .meta({ description: '`read`, `write` (implies read), `kyc` (sets KYC status), `ops` (implies all). A key bound to an account may have only read and write' });

const keyShape = {
  id: apiKeyIdSchema,
  name: z.string(),
  prefix: z.string().meta({ description: 'The first characters of the key, to recognise it; too few to use' }),
  scopes: z.array(scopeSchema),
  accountId: z.string().nullable().meta({ description: 'The one account the key may act for; null: any account' }),
  createdAt: z.date(),
  revokedAt: z.date().nullable().meta({ description: 'When it was revoked; null while it works' }),
};

export const apiKeySchema = z.object(keyShape).meta({ id: 'ApiKey', examples: [keyExample] });

export const createdApiKeySchema = z
  .object({
    ...keyShape,
    key: z
      .string()
      .optional()
      .meta({
        description:
          'The secret, `bsk_` and 43 characters: send it as `Authorization: Bearer <key>`. Shown in this response only and stored ' +
          'nowhere (the service keeps a keyed hash): absent from an idempotent replay (`Idempotent-Replayed: true`). A caller that ' +
          'lost it revokes the key by its id and makes another.',
      }),
  })
  .meta({ id: 'CreatedApiKey', examples: [{ ...keyExample, key: 'bsk_Q3vZ8kT1m9cXw0pR7yLd2sNf4bHj6aUe5gKq8oVi3Ez' }] });

export const createApiKeyBodySchema = z
  .object({
    name: z.string().trim().min(1).max(100).meta({ description: 'What the key is for, to recognise it in the list' }),
    scopes,
    accountId: accountIdSchema.optional().meta({ description: 'Bind the key to this account: it sees and changes only that account' }),
  })
  .meta({
    id: 'CreateApiKey',
    examples: [
      { name: 'kyc-service', scopes: ['kyc'] },
      { name: 'acme portal', scopes: ['read', 'write'], accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y' },
    ],
  });

export const listApiKeysQuerySchema = paginationQuerySchema.extend({
  accountId: accountIdSchema.optional().meta({ description: 'Only the keys bound to this account' }),
});

export const apiKeyListSchema = z
  .object({ data: z.array(apiKeySchema), nextCursor: z.string().nullable() })
  .meta({ id: 'ApiKeyList', examples: [{ data: [keyExample], nextCursor: null }] });
