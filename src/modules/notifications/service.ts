import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { emailDeliveries } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import * as accountsRepo from '../accounts/repo.js';
import type { OutboxRow } from '../events/repo.js';
import type { Mailer } from './mailer.js';
import { renderEmail } from './templates.js';

export type EmailOutcome = 'sent' | 'already_sent' | 'no_email';

export function createNotificationsService(deps: { db: Db; clock: Clock; mailer: Mailer }) {
  const { db, clock, mailer } = deps;

  /**
   * Sends the email an event causes, at most once per (event, template): the delivery row
   * is written before the send and marked after it, so a re-run job finds it sent.
   */
  async function emailForEvent(event: OutboxRow): Promise<EmailOutcome> {
    if (!event.accountId) return 'no_email';
    const account = await accountsRepo.findAccount(db, event.accountId);
    if (!account) return 'no_email';
    const email = renderEmail(event, account);
    if (!email) return 'no_email';

    await db
      .insert(emailDeliveries)
      .values({
        id: newId('eml', clock.now()),
        eventId: event.eventId,
        template: email.template,
        accountId: account.id,
        to: account.email,
        subject: email.subject,
        createdAt: clock.now(),
      })
      .onConflictDoNothing();
    const [delivery] = await db
      .select()
      .from(emailDeliveries)
      .where(and(eq(emailDeliveries.eventId, event.eventId), eq(emailDeliveries.template, email.template)));
    if (!delivery) throw new Error(`email delivery for ${event.eventId} vanished`);
    if (delivery.sentAt) return 'already_sent';

    const messageId = `<${delivery.id}@billing-service>`;
    await mailer.send({ to: delivery.to, subject: delivery.subject, text: email.text, messageId });
    await db
      .update(emailDeliveries)
      .set({ sentAt: clock.now(), messageId })
      .where(and(eq(emailDeliveries.id, delivery.id), isNull(emailDeliveries.sentAt)));
    return 'sent';
  }

  return { emailForEvent };
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
