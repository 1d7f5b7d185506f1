import { sql } from 'drizzle-orm';
import { bigserial, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Transactional outbox: a state change writes its events here in the same transaction;
 * the relay moves them to BullMQ afterwards.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    eventId: text('event_id').notNull().unique(),
    type: text('type').notNull(),
    accountId: text('account_id'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    relayedAt: timestamp('relayed_at', { withTimezone: true }),
  },
  (t) => [
    index('outbox_unrelayed_idx').on(t.id).where(sql`${t.relayedAt} is null`),
    index('outbox_account_idx').on(t.accountId, t.id),
  ],
);
