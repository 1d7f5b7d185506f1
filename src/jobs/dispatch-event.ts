import type { Job } from 'bullmq';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { outbox } from '../db/schema/index.js';
import { markHandled } from '../modules/events/repo.js';
import type { NotificationsService } from '../modules/notifications/service.js';
import { queueDefinitions, type JobPayload } from './registry.js';

/** Processes one relayed event: the account's email. Safe to re-run. (Webhook deliveries are made by the relay.) */
export function createEventDispatcher(deps: { db: Db; notifications: NotificationsService }) {
  return async function dispatchEvent(job: Job<JobPayload<'events'>>) {
    const { outboxId } = queueDefinitions.events.payload.parse(job.data);
    const [event] = await deps.db.select().from(outbox).where(eq(outbox.id, outboxId));
    if (!event) return { email: 'no_event' };
    const email = await deps.notifications.emailForEvent(event);
    // Only now is nothing owed for the event: until then the requeue sweep may queue it again.
    await markHandled(deps.db, outboxId);
    return { email };
  };
}
