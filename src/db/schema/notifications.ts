import { pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * One row per email an event causes. The unique (event, template) pair makes a re-run job
 * find the row instead of sending again; `sentAt` records the send. Partitioned by month of
 * its event's creation time (migration 0027): the pair's row is in the month of its event, so
 * the unique key carries that time and is exactly as strong as the pair.
 */
export const emailDeliveries = pgTable(
  'email_deliveries',
  {
    id: text('id').notNull(),
    eventId: text('event_id').notNull(),
    /** The event's `created_at`: the partition key. */
    eventCreatedAt: timestamp('event_created_at', { withTimezone: true }).notNull(),
    template: text('template').notNull(),
    accountId: text('account_id'),
    to: text('to').notNull(),
    subject: text('subject').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** A sender's lease: two runs of one job at once cannot both send. */
    claimedAt: timestamp('claimed_at', { withTimezone: true }),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    messageId: text('message_id'),
  },
  (t) => [primaryKey({ columns: [t.id, t.eventCreatedAt] }), uniqueIndex('email_deliveries_event_template_key').on(t.eventId, t.template, t.eventCreatedAt)],
);
