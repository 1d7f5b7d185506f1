import { bigserial, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/** Who did what to money, plans and keys, when, under which request. Append-only, partitioned by month of `at`. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actorKeyId: text('actor_key_id').notNull(),
    action: text('action').notNull(),
    accountId: text('account_id'),
    target: text('target'),
    requestId: text('request_id'),
    status: integer('status'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.id, t.at] }), index('audit_events_account_idx').on(t.accountId, t.id)],
);
