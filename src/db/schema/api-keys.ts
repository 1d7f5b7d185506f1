import { index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';

/**
 * API keys are stored hashed (see createKeyHasher: an HMAC under a server-side pepper); the
 * key itself is shown once.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    /** The first characters of the key, to recognise it in lists and logs. */
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull().unique(),
    /** The SECRETS_KEYS key whose pepper made `hash`; null: a legacy plain SHA-256, converted by secrets:rotate. */
    hashKid: text('hash_kid'),
    scopes: text('scopes').array().notNull(),
    accountId: text('account_id').references(() => accounts.id),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_keys_account_idx').on(t.accountId)],
);
