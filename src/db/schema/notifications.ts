import { pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * One row per email an event causes. The unique (event, template) pair makes a re-run job
 * find the row instead of sending again; `sentAt` records the send.
 */
export const emailDeliveries = pgTable(
  'email_deliveries',
  {
    id: text('id').primaryKey(),
    eventId: text('event_id').notNull(),
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
  (t) => [uniqueIndex('email_deliveries_event_template_key').on(t.eventId, t.template)],
);
