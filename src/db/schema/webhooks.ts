import { sql } from 'drizzle-orm';
import { bigserial, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';

/**
 * Where an account wants its events. The signing secret must be readable to sign with; a
 * rotated-out secret keeps signing beside the new one until its grace period ends.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    url: text('url').notNull(),
    description: text('description').notNull().default(''),
    /** Empty: every event type. */
    eventTypes: text('event_types').array().notNull(),
    status: text('status', { enum: ['enabled', 'disabled', 'deleted'] }).notNull(),
    disabledReason: text('disabled_reason'),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('webhook_endpoints_account_idx').on(t.accountId)],
);

/**
 * One event for one endpoint, kept until it is delivered or given up (and then redeliverable).
 * Partitioned by month of its event's creation time (migration 0027), so the (endpoint, event)
 * key carries that time and stays exactly as strong; months go with the outbox's.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').notNull(),
    endpointId: text('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id),
    accountId: text('account_id').notNull(),
    /** The outbox event id: the Standard Webhooks `webhook-id`, the same on every attempt. */
    eventId: text('event_id').notNull(),
    /** The event's `created_at`: the partition key. */
    eventCreatedAt: timestamp('event_created_at', { withTimezone: true }).notNull(),
    eventType: text('event_type').notNull(),
    deliveryClass: text('delivery_class', { enum: ['standard', 'priority', 'guaranteed'] }).notNull(),
    status: text('status', { enum: ['pending', 'succeeded', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
    /** Held while a job for this delivery is queued or running; the sweep skips it until then. */
    leasedUntil: timestamp('leased_until', { withTimezone: true }),
    /** Retries stop after this; guaranteed deliveries are then parked as failed (and redeliverable). */
    giveUpAt: timestamp('give_up_at', { withTimezone: true }).notNull(),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.eventCreatedAt] }),
    uniqueIndex('webhook_deliveries_endpoint_event_key').on(t.endpointId, t.eventId, t.eventCreatedAt),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.id),
    index('webhook_deliveries_due_idx').on(t.deliveryClass, t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  ],
);

/**
 * Every delivery attempt. Append-only, partitioned by month of `attempted_at`. No foreign key
 * to its delivery: the two are partitioned by different times and dropped on their own.
 */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    deliveryId: text('delivery_id').notNull(),
    attemptedAt: timestamp('attempted_at', { withTimezone: true }).notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    error: text('error'),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.id, t.attemptedAt] }), index('webhook_attempts_delivery_idx').on(t.deliveryId, t.id)],
);
