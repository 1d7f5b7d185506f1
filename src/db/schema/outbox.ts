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
    /**
     * When the event's job finished (its email sent, or none was due). A relayed row without it
     * whose job Redis lost is queued again by the sweep: Redis is not the record of what is owed.
     */
    handledAt: timestamp('handled_at', { withTimezone: true }),
  },
  (t) => [
    index('outbox_unrelayed_idx').on(t.id).where(sql`${t.relayedAt} is null`),
    index('outbox_account_idx').on(t.accountId, t.id),
    index('outbox_unhandled_idx').on(t.relayedAt).where(sql`${t.relayedAt} is not null and ${t.handledAt} is null`),
  ],
);
