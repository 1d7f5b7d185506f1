import { bigserial, index, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Who did what to money, plans and keys, when, under which request. Append-only. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actorKeyId: text('actor_key_id').notNull(),
    action: text('action').notNull(),
    accountId: text('account_id'),
    target: text('target'),
    requestId: text('request_id'),
    status: integer('status'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [index('audit_events_account_idx').on(t.accountId, t.id)],
);
