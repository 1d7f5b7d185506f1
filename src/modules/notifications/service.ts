import { pdfFileName } from '../billing/domain.js';
import { and, eq, isNull, lt, or } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { retryOnConnectionError } from '../../db/errors.js';
import { emailDeliveries } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import * as accountsRepo from '../accounts/repo.js';
import type { OutboxRow } from '../events/repo.js';
import type { Email, Mailer } from './mailer.js';
import { createInvoiceDocuments } from '../billing/documents.js';
import type { Taxation } from '../billing/tax.js';
import * as billingRepo from '../billing/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { emailNeeds, renderEmail, renderUpgradeConfirmation, type EmailFacts, type RenderedEmail } from './templates.js';

export type EmailOutcome = 'sent' | 'already_sent' | 'no_email';

/**
 * A send that has not finished in this long is presumed dead (its worker was killed); another
 * run may send. Longer than any send can take (SEND_TIMEOUTS_MS), short enough that a killed
 * worker's emails go out within minutes.
 */
const LEASE_MS = 90_000;

/**
 * A credit note's PDF by its id (the credit-notes module renders and keeps it); null when it
 * has none yet. Given, it goes with the credit note and refund emails.
 */
export type CreditNotePdf = (creditNoteId: string) => Promise<{ number: string; pdf: Buffer } | null>;

const pdfAttachment = (number: string, pdf: Buffer) => ({ filename: pdfFileName(number), content: pdf, contentType: 'application/pdf' });

export function createNotificationsService(deps: { db: Db; clock: Clock; mailer: Mailer; taxation?: Taxation; creditNotePdf?: CreditNotePdf }) {
  const documents = createInvoiceDocuments(deps);
  const { db, clock, mailer } = deps;

  /**
   * Sends the email an event causes, at most once per (event, template): the delivery row
   * is written before the send and marked after it, so a re-run job finds it sent.
   */
  async function emailForEvent(event: OutboxRow): Promise<EmailOutcome> {
    if (!event.accountId) return 'no_email';
    const account = await accountsRepo.findAccount(db, event.accountId);
    if (!account) return 'no_email';
    const composed = await compose(event, account);
    if (!composed) return 'no_email';
    const { email, attachments } = composed;

    await db
      .insert(emailDeliveries)
      .values({
        id: newId('eml', clock.now()),
        eventId: event.eventId,
        eventCreatedAt: event.createdAt,
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
      .where(and(eq(emailDeliveries.eventId, event.eventId), eq(emailDeliveries.template, email.template), eq(emailDeliveries.eventCreatedAt, event.createdAt)));
    if (!delivery) throw new Error(`email delivery for ${event.eventId} vanished`);
    if (delivery.sentAt) return 'already_sent';
    const claimedAt = clock.now();
    const [claimed] = await db
      .update(emailDeliveries)
      .set({ claimedAt })
      .where(
        and(
          eq(emailDeliveries.id, delivery.id),
          isNull(emailDeliveries.sentAt),
          or(isNull(emailDeliveries.claimedAt), lt(emailDeliveries.claimedAt, new Date(claimedAt.getTime() - LEASE_MS))),
        ),
      )
      .returning({ id: emailDeliveries.id });
    // Another run holds the lease: fail this run, so the queue retries it after the send is done (or dead).
    if (!claimed) throw new Error(`email ${delivery.id} is being sent by another run`);

    const messageId = `<${delivery.id}@billing-service>`;
    try {
      await mailer.send({ to: delivery.to, subject: delivery.subject, text: email.text, html: email.html, attachments, messageId });
    } catch (err) {
      // Give the lease back so the job's retry can send.
      await db.update(emailDeliveries).set({ claimedAt: null }).where(and(eq(emailDeliveries.id, delivery.id), eq(emailDeliveries.claimedAt, claimedAt)));
      throw err;
    }
    // The email is out: losing this write to a dropped connection would send it again once
    // the lease runs out, so it is tried again on a fresh connection first.
    await retryOnConnectionError(() =>
      db
        .update(emailDeliveries)
        .set({ sentAt: clock.now(), messageId })
        .where(and(eq(emailDeliveries.id, delivery.id), isNull(emailDeliveries.sentAt))),
    );
    return 'sent';
  }

  /** The email an event causes, with what it needs from the database; null when none. */
  async function compose(event: OutboxRow, account: accountsRepo.AccountRow): Promise<{ email: RenderedEmail; attachments?: Email['attachments'] } | null> {
    if (event.type === 'account.upgraded') return upgradeConfirmation(event, account);
    // Most events send nothing: rendered once without facts to know, before any lookup.
    if (!renderEmail(event, account)) return null;
    const needs = emailNeeds(event);
    const facts: EmailFacts = {};
    const attachments: NonNullable<Email['attachments']> = [];
    if (needs.planIds.length > 0) {
      facts.planNames = Object.fromEntries((await catalogRepo.findPlans(db, needs.planIds)).map((plan) => [plan.id, plan.name]));
    }
    if (needs.invoiceId) {
      const invoiceRow = await billingRepo.findInvoice(db, needs.invoiceId);
      if (!invoiceRow) throw new Error(`${event.type} ${event.eventId} names a missing invoice`);
      facts.invoiceNumber = invoiceRow.number;
      if (needs.attach === 'invoice') attachments.push(pdfAttachment(invoiceRow.number, (await documents.pdfOf(invoiceRow)).pdf));
    }
    if (needs.creditNoteId && deps.creditNotePdf) {
      const note = await deps.creditNotePdf(needs.creditNoteId);
      if (note) attachments.push(pdfAttachment(note.number, note.pdf));
    }
    facts.attached = attachments.length > 0;
    const email = renderEmail(event, account, facts)!;
    return attachments.length > 0 ? { email, attachments } : { email };
  }

  async function upgradeConfirmation(event: OutboxRow, account: accountsRepo.AccountRow) {
    const invoiceRow = await billingRepo.findInvoice(db, String(event.payload.invoiceId));
    const plan = await catalogRepo.findPlan(db, String(event.payload.planId));
    if (!invoiceRow || !plan) throw new Error(`account.upgraded ${event.eventId} names a missing invoice or plan`);
    const { invoice, pdf } = await documents.pdfOf(invoiceRow);
    const email = renderUpgradeConfirmation({ account, plan, entitlements: plan.entitlements, invoice });
    return { email, attachments: [pdfAttachment(invoice.number, pdf)] };
  }

  return { emailForEvent };
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
