import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { formatAmount } from '../../lib/format.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import * as accountsRepo from '../accounts/repo.js';
import { financialYearOf, fyCode } from '../billing/domain.js';
import * as billingRepo from '../billing/repo.js';
import * as creditsRepo from '../credits/repo.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import type { IdempotencyHandle } from '../idempotency/repo.js';
import type { PaymentProvider, RefundResult } from '../payments/provider.js';
import * as paymentsRepo from '../payments/repo.js';
import * as renewalsRepo from '../renewals/repo.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { creditNoteNumber, planCreditNote } from './domain.js';
import * as repo from './repo.js';

export interface IssueCreditNoteInput {
  reason: string;
  /** A taxable value taken from the invoice's lines in order; or `lines`. */
  amount?: number;
  lines?: Array<{ position: number; amount: number }>;
  settlement?: 'refund' | 'credits' | 'reduce_due';
}

/** A refund the gateway has not answered may still be on its way: the sweep leaves it this long. */
const REFUND_IN_FLIGHT_MS = 2 * 60_000;
const REFUND_DEADLINE_MS = 20_000;

/**
 * Credit notes, refunds and voided invoices: how an issued invoice is corrected. A credit note
 * is a document of its own (CN/2627/0000001) that takes a taxable value off an invoice with
 * its tax reversed in proportion, settled one way: money back to the method that paid
 * (through the gateway, outside any transaction, under the refund's id), credits in the
 * ledger, or less due on an unpaid invoice. Purchased credits are taken back from the ledger
 * before their money is refunded, and not at all once spent. See docs/refunds.md.
 */
export function createCreditNotesService(deps: { db: Db; clock: Clock; provider: PaymentProvider; logger: Logger; accountChanged: (accountId: string) => void }) {
  const { db, clock, provider, logger } = deps;

  async function mustFindInvoice(tx: Db, invoiceId: string, viewer: { accountId: string | null }, lock = false) {
    const invoice = await billingRepo.findInvoice(tx, invoiceId, { forUpdate: lock });
    if (!invoice || (viewer.accountId && viewer.accountId !== invoice.accountId)) throw new AppError('invoice_not_found', `No invoice ${invoiceId}`);
    return invoice;
  }

  /**
   * Issues a credit note against an invoice, settles it, and answers with it. A retry of the
   * same request (its Idempotency-Key) finds the note it issued and finishes its refund
   * rather than issuing another.
   */
  async function issue(invoiceId: string, viewer: { accountId: string | null }, input: IssueCreditNoteInput, idempotency: IdempotencyHandle | null) {
    const requestKey = idempotency ? `${idempotency.apiKeyId}:${idempotency.key}` : null;
    const earlier = requestKey ? await repo.findByRequestKey(db, requestKey) : undefined;
    if (earlier) {
      if (earlier.invoiceId !== invoiceId) throw new AppError('idempotency_key_reused', 'This Idempotency-Key issued a credit note for another invoice');
      await finishRefund(earlier.id);
      return get(earlier.id, viewer);
    }
    const found = await mustFindInvoice(db, invoiceId, viewer);
    const issued = await db.transaction(async (tx) => {
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const invoice = (await billingRepo.findInvoice(tx, invoiceId, { forUpdate: true }))!;
      const now = await nowForAccount(tx, account, clock);
      if (invoice.status === 'void') throw new AppError('invoice_not_creditable', `Invoice ${invoice.number} is void: nothing is owed on it`);
      if (invoice.status === 'open' && invoice.kind === 'credits') {
        throw new AppError('invoice_not_creditable', `Invoice ${invoice.number} is an unpaid auto-recharge: void it instead (POST /v1/invoices/{id}/void)`);
      }
      const inFlight = await paymentsRepo.findInFlightForInvoice(tx, invoiceId);
      if (inFlight) throw new AppError('invoice_payment_in_progress', `Payment ${inFlight.id} of invoice ${invoice.number} is in flight; retry once it settled`, { paymentId: inFlight.id });
      const settlement = input.settlement ?? (invoice.status === 'paid' ? 'refund' : 'reduce_due');
      if (invoice.status === 'open' && settlement !== 'reduce_due') {
        throw new AppError('invalid_settlement', `Invoice ${invoice.number} is unpaid: its credit note reduces what is due (settlement reduce_due)`);
      }
      if (invoice.status === 'paid' && settlement === 'reduce_due') {
        throw new AppError('invalid_settlement', `Invoice ${invoice.number} is paid: settle the credit note as a refund or as credits`);
      }

      const lines = await billingRepo.linesOf(tx, invoiceId);
      const earlierNotes = await repo.listForInvoice(tx, invoiceId);
      const creditedByLine = new Map<number, number>();
      const taxCredited: Record<string, number> = {};
      for (const note of earlierNotes) {
        for (const l of note.lines) creditedByLine.set(l.position, (creditedByLine.get(l.position) ?? 0) + l.amount);
        for (const c of note.taxComponents) taxCredited[c.name] = (taxCredited[c.name] ?? 0) + c.amount;
      }
      const components = invoice.taxComponents ?? [{ name: 'IGST' as const, rateBps: invoice.taxRateBps, amount: invoice.taxAmount }];
      const plan = planCreditNote({
        lines: lines.map((l) => ({ position: l.position, kind: l.kind, description: l.description, amount: l.amount, credited: creditedByLine.get(l.position) ?? 0 })),
        subtotal: invoice.subtotal,
        tax: { components },
        taxCredited,
        request: { amount: input.amount, lines: input.lines },
        currency: invoice.currency,
      });
      if ('refused' in plan) throw new AppError(plan.refused.code, plan.refused.detail, plan.refused.extra);
      if (plan.total === 0) throw new AppError('credit_note_exceeds_invoice', `Invoice ${invoice.number} has nothing left to credit`, { creditable: 0 });

      const payment = settlement === 'refund' ? await repo.findRefundablePayment(tx, invoiceId) : undefined;
      if (settlement === 'refund' && !payment) {
        throw new AppError('refund_not_possible', `Invoice ${invoice.number} was not paid through the gateway (a wire transfer or cheque): settle the credit note as credits, and return bank money outside`);
      }
      if (settlement === 'credits' && plan.credits > 0) {
        throw new AppError('invalid_settlement', 'Purchased credits are refunded to the method that paid for them, not returned as credits');
      }
      if (settlement === 'reduce_due' && plan.credits > 0) {
        throw new AppError('invalid_settlement', `The prepaid credits of unpaid invoice ${invoice.number} are not granted yet: credit its other lines, or void it`);
      }
      const id = newId('cn', now);
      // Purchased credits go back before their money does, and only those still unspent.
      if (plan.credits > 0) {
        // Credits held for calls in progress are spoken for.
        const balance = (await creditsRepo.balanceOf(tx, account.id)).available;
        if (balance < plan.credits) {
          throw new AppError('credits_already_spent', `${formatAmount(plan.credits, account.currency)} of credits would be taken back, but only ${formatAmount(balance, account.currency)} are left: spent credits are not refunded`, {
            balance,
            credits: plan.credits,
          });
        }
        await creditsRepo.applyEntry(tx, {
          accountId: account.id,
          currency: account.currency,
          amount: -plan.credits,
          kind: 'refund',
          sourceKey: `credit_note:${id}:credits`,
          description: `Credits refunded, credit note against invoice ${invoice.number}`,
          at: now,
        });
      }

      const financialYear = financialYearOf(now);
      const sequence = await billingRepo.nextInvoiceSequence(tx, `CN-${financialYear}`);
      const note = await repo.insertCreditNote(tx, {
        id,
        accountId: account.id,
        invoiceId,
        number: creditNoteNumber(fyCode(financialYear), sequence),
        financialYear,
        sequence,
        reason: input.reason,
        settlement,
        currency: invoice.currency,
        subtotal: plan.subtotal,
        taxAmount: plan.tax.amount,
        taxComponents: plan.tax.components,
        total: plan.total,
        lines: plan.lines,
        supply: invoice.supply,
        requestKey,
        issuedAt: now,
      });
      const credited = await repo.addCredited(tx, invoiceId, plan.total);
      const events: NewEvent[] = [
        {
          type: 'credit_note.created',
          accountId: account.id,
          payload: { accountId: account.id, creditNoteId: id, number: note.number, invoiceId, invoiceNumber: invoice.number, total: note.total, currency: note.currency, settlement, reason: input.reason },
        },
      ];
      let refund: repo.RefundRow | undefined;
      if (settlement === 'credits') {
        await creditsRepo.applyEntry(tx, {
          accountId: account.id,
          currency: account.currency,
          amount: plan.total,
          kind: 'credit_note',
          sourceKey: `credit_note:${id}`,
          description: `Credit note ${note.number} against invoice ${invoice.number}`,
          at: now,
        });
      } else if (settlement === 'reduce_due') {
        events.push(...(await reduceDue(tx, credited, account, now)));
      } else {
        refund = await repo.insertRefund(tx, {
          id: newId('re', now),
          accountId: account.id,
          creditNoteId: id,
          paymentId: payment!.id,
          amount: plan.total,
          currency: note.currency,
          status: 'processing',
          createdAt: now,
          updatedAt: now,
        });
      }
      await appendEvents(tx, now, events);
      return { note, refund, chargeReference: payment?.providerReference ?? null };
    });
    deps.accountChanged(issued.note.accountId);
    if (issued.refund) await sendRefund(issued.refund, issued.chargeReference!, issued.note.reason);
    return get(issued.note.id, viewer);
  }

  /**
   * An unpaid invoice owes less. Owing nothing, it is settled (paid by the credit): dunning
   * stops, and a renewal's past-due subscription is active again. Payments awaiting a wire
   * now await what is left, or nothing.
   */
  async function reduceDue(tx: Db, invoice: billingRepo.InvoiceRow, account: accountsRepo.AccountRow, now: Date): Promise<NewEvent[]> {
    const due = invoice.total - invoice.creditedTotal;
    if (due > 0) {
      await repo.setAwaitingAmount(tx, invoice.id, due, now);
      return [];
    }
    await repo.settleByCredit(tx, invoice.id, now);
    await repo.failAwaiting(tx, invoice.id, 'invoice_credited', 'A credit note settled the invoice', now);
    return recoverIfPastDue(tx, invoice, account, now);
  }

  /** A renewal invoice no longer owed: a subscription past due because of it is active again. */
  async function recoverIfPastDue(tx: Db, invoice: billingRepo.InvoiceRow, account: accountsRepo.AccountRow, now: Date): Promise<NewEvent[]> {
    if (!invoice.subscriptionId) return [];
    const sub = await subscriptionsRepo.findSubscription(tx, invoice.subscriptionId, { forUpdate: true });
    if (sub?.status !== 'past_due') return [];
    await renewalsRepo.markRecovered(tx, sub.id, account.id, now);
    return [{ type: 'subscription.recovered', accountId: account.id, payload: { accountId: account.id, subscriptionId: sub.id, invoiceId: invoice.id } }];
  }

  /** Asks the gateway for the money back, outside any transaction, and settles its answer. */
  async function sendRefund(refund: repo.RefundRow, chargeReference: string, reason: string): Promise<void> {
    let result: RefundResult;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<RefundResult>((resolve) => {
        timer = setTimeout(() => resolve({ status: 'unknown' }), REFUND_DEADLINE_MS);
      });
      result = await Promise.race([
        provider.refund({ idempotencyKey: refund.id, chargeReference, amount: refund.amount, currency: refund.currency, reason }),
        deadline,
      ]);
    } catch (err) {
      logger.warn({ err, refundId: refund.id }, 'refund call failed; result unknown');
      result = { status: 'unknown' };
    } finally {
      clearTimeout(timer);
    }
    await settleRefund(refund.id, result);
  }

  /**
   * The gateway's answer: succeeded, or failed (the credit note stands and its money is owed
   * another way: ops hear of it through refund.failed; purchased credits taken back stay
   * taken back, or the customer would have both), or unknown (the sweep asks again).
   * Safe twice: a refund already settled stays as it is.
   */
  async function settleRefund(refundId: string, result: RefundResult): Promise<void> {
    const accountId = await db.transaction(async (tx) => {
      const found = (await repo.findRefund(tx, refundId))!;
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const refund = (await repo.findRefund(tx, refundId, { forUpdate: true }))!;
      if (refund.status !== 'processing' && refund.status !== 'unknown') return null;
      const now = await nowForAccount(tx, account, clock);
      const note = (await repo.findCreditNote(tx, refund.creditNoteId))!;
      const ids = { accountId: account.id, refundId, creditNoteId: note.id, creditNoteNumber: note.number, paymentId: refund.paymentId, amount: refund.amount, currency: refund.currency };
      if (result.status === 'succeeded') {
        await repo.updateRefund(tx, refundId, { status: 'succeeded', providerReference: result.reference, updatedAt: now });
        await appendEvents(tx, now, [{ type: 'refund.succeeded', accountId: account.id, payload: ids }]);
        return account.id;
      }
      if (result.status === 'failed') {
        await repo.updateRefund(tx, refundId, { status: 'failed', providerReference: result.reference, failureCode: result.code, failureMessage: result.message, updatedAt: now });
        logger.warn({ refundId, code: result.code }, 'refund failed: return the money another way');
        await appendEvents(tx, now, [{ type: 'refund.failed', accountId: account.id, payload: { ...ids, failureCode: result.code, failureMessage: result.message } }]);
        return account.id;
      }
      if (refund.status === 'processing') await repo.updateRefund(tx, refundId, { status: 'unknown', updatedAt: now });
      return null;
    });
    if (accountId) deps.accountChanged(accountId);
  }

  /** A retried request whose refund has no answer yet: ask the gateway again under the same id. */
  async function finishRefund(creditNoteId: string): Promise<void> {
    const refund = await repo.findRefundOf(db, creditNoteId);
    if (!refund || (refund.status !== 'processing' && refund.status !== 'unknown')) return;
    await reconcileOne(refund);
  }

  async function reconcileOne(refund: repo.RefundRow): Promise<void> {
    const known = await provider.lookupRefund(refund.id);
    if (known.status !== 'not_found') return settleRefund(refund.id, known);
    // The gateway never saw it: send it again under the same id (it refunds at most once).
    const payment = (await paymentsRepo.findPayment(db, refund.paymentId))!;
    const note = (await repo.findCreditNote(db, refund.creditNoteId))!;
    await sendRefund(refund, payment.providerReference!, note.reason);
  }

  /** The worker's sweep: refunds without an answer for two minutes of real time. */
  async function reconcileRefunds(limit = 100): Promise<number> {
    const stale = await repo.listUnresolvedRefunds(db, REFUND_IN_FLIGHT_MS, limit);
    for (const refund of stale) {
      try {
        await reconcileOne(refund);
      } catch (err) {
        logger.error({ err, refundId: refund.id }, 'could not reconcile refund');
      }
    }
    return stale.length;
  }

  /**
   * Voids an open invoice (ops): nothing is owed on it any more, its number stays used,
   * dunning stops, payments awaiting a wire for it fail, and a subscription past due because
   * of it is active again. An upgrade's invoice is not voided (the pending upgrade is
   * cancelled as such); a paid one is corrected with a credit note instead.
   */
  async function voidInvoice(invoiceId: string, viewer: { accountId: string | null }) {
    const found = await mustFindInvoice(db, invoiceId, viewer);
    const invoice = await db.transaction(async (tx) => {
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const invoice = (await billingRepo.findInvoice(tx, invoiceId, { forUpdate: true }))!;
      const now = await nowForAccount(tx, account, clock);
      if (invoice.status === 'void') return invoice;
      if (invoice.status !== 'open') throw new AppError('invoice_not_voidable', `Invoice ${invoice.number} is ${invoice.status}: correct it with a credit note`);
      if (invoice.kind === 'upgrade') throw new AppError('invoice_not_voidable', `Invoice ${invoice.number} belongs to a pending upgrade`);
      const inFlight = await paymentsRepo.findInFlightForInvoice(tx, invoiceId);
      if (inFlight) throw new AppError('invoice_payment_in_progress', `Payment ${inFlight.id} of invoice ${invoice.number} is in flight; retry once it settled`, { paymentId: inFlight.id });
      await billingRepo.voidInvoice(tx, invoiceId);
      // Its PDF is printed again, marked cancelled.
      await billingRepo.dropDocument(tx, invoiceId);
      await repo.failAwaiting(tx, invoiceId, 'invoice_voided', 'The invoice was voided', now);
      const recovered = await recoverIfPastDue(tx, invoice, account, now);
      await appendEvents(tx, now, [
        { type: 'invoice.voided', accountId: account.id, payload: { accountId: account.id, invoiceId, number: invoice.number, total: invoice.total, currency: invoice.currency } },
        ...recovered,
      ]);
      return (await billingRepo.findInvoice(tx, invoiceId))!;
    });
    deps.accountChanged(invoice.accountId);
    return invoice;
  }

  async function get(id: string, viewer: { accountId: string | null }) {
    const note = await repo.findCreditNote(db, id);
    if (!note || (viewer.accountId && viewer.accountId !== note.accountId)) throw new AppError('credit_note_not_found', `No credit note ${id}`);
    const invoice = (await billingRepo.findInvoice(db, note.invoiceId))!;
    return { note, invoice, refund: await repo.findRefundOf(db, id) };
  }

  async function listForInvoice(invoiceId: string, viewer: { accountId: string | null }) {
    const invoice = await mustFindInvoice(db, invoiceId, viewer);
    const notes = await repo.listForInvoice(db, invoiceId);
    const refunds = new Map((await repo.refundsOf(db, notes.map((n) => n.id))).map((r) => [r.creditNoteId, r]));
    return notes.map((note) => ({ note, invoice, refund: refunds.get(note.id) }));
  }

  return { issue, get, listForInvoice, voidInvoice, reconcileRefunds, settleRefund };
}

export type CreditNotesService = ReturnType<typeof createCreditNotesService>;
