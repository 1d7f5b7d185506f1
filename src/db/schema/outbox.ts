import { sql } from 'drizzle-orm';
import { bigserial, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Transactional outbox: a state change writes its events here in the same transaction;
 * the relay moves them to BullMQ afterwards. Partitioned by month of `created_at` (migration
 * 0027); a month is dropped past retention once every row of it is handled. An event id
 * carries its creation time (src/lib/ids.ts), so (event_id, created_at) is as unique as the id.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    eventId: text('event_id').notNull(),
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
    primaryKey({ columns: [t.id, t.createdAt] }),
    uniqueIndex('outbox_event_id_created_at_key').on(t.eventId, t.createdAt),
    index('outbox_unrelayed_idx').on(t.id).where(sql`${t.relayedAt} is null`),
    index('outbox_account_idx').on(t.accountId, t.id),
    index('outbox_unhandled_idx').on(t.relayedAt).where(sql`${t.relayedAt} is not null and ${t.handledAt} is null`),
  ],
);
