import type { Job } from 'bullmq';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { outbox } from '../db/schema/index.js';
import type { NotificationsService } from '../modules/notifications/service.js';
import type { WebhookService } from '../modules/webhooks/service.js';
import { queueDefinitions, type JobPayload } from './registry.js';

/** Processes one relayed event: the account's email and its webhook deliveries. Safe to re-run. */
export function createEventDispatcher(deps: { db: Db; notifications: NotificationsService; webhooks?: WebhookService }) {
  return async function dispatchEvent(job: Job<JobPayload<'events'>>) {
    const { outboxId } = queueDefinitions.events.payload.parse(job.data);
    const [event] = await deps.db.select().from(outbox).where(eq(outbox.id, outboxId));
    if (!event) return { email: 'no_event' };
    const webhooks = deps.webhooks ? await deps.webhooks.fanOut(event) : 0;
    return { email: await deps.notifications.emailForEvent(event), webhooks };
  };
}
