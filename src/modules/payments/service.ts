import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import { page } from '../../lib/pagination.js';
import type { Currency } from '../../lib/money.js';
import * as accountsRepo from '../accounts/repo.js';
import { toAccountDto } from '../accounts/service.js';
import { toInvoiceDto } from '../billing/dto.js';
import { amountDue } from '../billing/domain.js';
import * as billingRepo from '../billing/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import { toSubscriptionDto } from '../subscriptions/dto.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { chargeAllWithDeadline, chargeMethodOf, chargeWithDeadline, resolveUnknownCharge } from './charging.js';
import { toPaymentDto } from './dto.js';
import type { ChargeRequest, ChargeResult, PaymentProvider } from './provider.js';
import type { MandateRules } from './mandate.js';
import type { Taxation } from '../billing/tax.js';
import { invoicePurpose } from './invoice-purpose.js';
import * as repo from './repo.js';
import type { PaymentResult } from './result.js';

export type Purpose = repo.PaymentRow['purpose'];

/** A payment being settled: it and its account are locked, in the transaction that settles it. */
export interface Settling {
  tx: Db;
  payment: repo.PaymentRow;
  account: accountsRepo.AccountRow;
  /** The account's time (its test clock's, or the real one). */
  now: Date;
}

/** What a purpose did with a settled payment. */
export interface Effects {
  /** The invoice the payment paid, when the purpose issued it now. */
  invoiceId?: string;
  /** Events before the payment's own: an invoice issued now is created before it is paid. */
  before?: NewEvent[];
  /** Fields the purpose adds to payment.succeeded or payment.failed (its subscription). */
  fields?: Record<string, unknown>;
  /** Events after the payment's own. */
  after?: NewEvent[];
}

/** The payments of a purpose that a batch settles together, and those it leaves to `settle`. */
export interface ManySettled {
  settled: Array<{ paymentId: string; fields?: Record<string, unknown>; after: NewEvent[] }>;
  passOn: string[];
}

/**
 * What a payment's success or failure means for what it pays for, in the settling
 * transaction: an upgrade activates the account, a renewal pays its invoice and ends
 * dunning, a credit purchase credits the ledger. The lifecycle around it is the same for all.
 */
export interface PurposeHandler {
  /** What the gateway shows for a charge. */
  describe(payment: repo.PaymentRow): string;
  /** Charged without the customer present (renewals, auto-recharge). */
  unattended: boolean;
  /** Fields the purpose adds to the payment's events, known before it settles. */
  fields?(settling: Settling): Promise<Record<string, unknown>>;
  succeeded(settling: Settling): Promise<Effects>;
  /** After the payment is recorded failed (and payment.failed written): what the decline means. */
  failed(settling: Settling, failure: { code: string; message: string }): Promise<Effects>;
  /** Many successes of plain cases in one transaction (a renewal wave); without it, one by one. */
  succeededMany?(tx: Db, payments: repo.PaymentRow[], now: Date): Promise<ManySettled>;
}

/** What every module whose purpose takes money is built with. */
export interface PurposeDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  /** The seller and the tax rate per buyer country (GST split by place of supply). */
  taxation: Taxation;
  mandate: MandateRules;
  payments: PaymentsService;
}

export interface OpenPayment {
  accountId: string;
  purpose: Purpose;
  amount: number;
  currency: Currency;
  method: Pick<repo.PaymentMethodRow, 'id' | 'type'>;
  invoiceId?: string | null;
  /** What the money is for, kept on the payment so an unknown or offline payment can complete it. */
  request: Record<string, unknown>;
  now: Date;
  /** Wire transfer or cheque: nothing to charge; ops record the money. */
  offline?: boolean;
  /** The customer is present (paying an invoice themselves): never charged as unattended, and a decline is theirs to see. */
  attended?: boolean;
  id?: string;
}

/** Whether the customer made this payment themselves (POST /v1/invoices/{id}/pay). */
export const isAttended = (payment: Pick<repo.PaymentRow, 'request'>): boolean => (payment.request as { attended?: boolean }).attended === true;

const inFlight = (status: repo.PaymentRow['status']) => status === 'processing' || status === 'unknown';

/**
 * The one payment lifecycle, whatever the money is for. A payment is opened (in the caller's
 * transaction) before any money moves; it is charged outside any transaction under its own
 * id, which the gateway treats as an idempotency key; the answer is settled in one
 * transaction that locks the account, then the payment, and is a no-op for a payment already
 * final, so settling twice is safe; an answer that was lost is reconciled from the
 * gateway's record by one sweep; money paid offline is recorded by ops. What success and
 * failure mean is the purpose's handler, run inside the settling transaction.
 */
export function createPaymentsService(deps: { db: Db; clock: Clock; provider: PaymentProvider; logger: Logger; accountChanged: (accountId: string) => void }) {
  const { db, clock, provider, logger } = deps;
  const handlers = new Map<Purpose, PurposeHandler>();

  const handlerOf = (purpose: Purpose): PurposeHandler => {
    const handler = handlers.get(purpose);
    if (!handler) throw new Error(`no payment handler for ${purpose}`);
    return handler;
  };

  /** Each purpose's module registers what its payments mean, once, when it is created. */
  function handle(purpose: Purpose, handler: PurposeHandler): void {
    handlers.set(purpose, handler);
  }

  function rowOf(input: OpenPayment): Parameters<typeof repo.insertPayment>[1] {
    return {
      id: input.id ?? newId('pay', input.now),
      accountId: input.accountId,
      purpose: input.purpose,
      status: input.offline ? 'awaiting_confirmation' : 'processing',
      amount: input.amount,
      currency: input.currency,
      methodType: input.method.type,
      paymentMethodId: input.method.id,
      invoiceId: input.invoiceId ?? null,
      request: input.attended ? { ...input.request, attended: true } : input.request,
      createdAt: input.now,
      updatedAt: input.now,
    };
  }

  /** Records a payment before any money moves, in the caller's transaction. */
  const open = (tx: Db, input: OpenPayment): Promise<repo.PaymentRow> => repo.insertPayment(tx, rowOf(input));

  /** Many at once (a renewal wave): one statement. */
  const openMany = (tx: Db, inputs: OpenPayment[]): Promise<void> => repo.insertPayments(tx, inputs.map(rowOf));

  /** The one charge request of a payment: its id is the gateway's idempotency key. */
  function chargeRequestOf(
    payment: Pick<repo.PaymentRow, 'id' | 'amount' | 'currency' | 'purpose' | 'accountId' | 'invoiceId' | 'request'>,
    method: Pick<repo.PaymentMethodRow, 'type' | 'reference'>,
  ): ChargeRequest {
    const handler = handlerOf(payment.purpose);
    return {
      idempotencyKey: payment.id,
      amount: payment.amount,
      currency: payment.currency,
      method: chargeMethodOf(method),
      description: handler.describe(payment as repo.PaymentRow),
      unattended: handler.unattended && !isAttended(payment),
    };
  }

  /** Charges a payment (never inside a transaction); a late or broken call is `unknown`. */
  async function charge(payment: repo.PaymentRow, method?: repo.PaymentMethodRow): Promise<ChargeResult> {
    const chargedBy = method ?? (await repo.findPaymentMethod(db, payment.paymentMethodId))!;
    return chargeWithDeadline(provider, chargeRequestOf(payment, chargedBy), logger);
  }

  /** Many charges in one gateway call where it has one; answers in order. */
  const chargeMany = (requests: ChargeRequest[]): Promise<ChargeResult[]> => chargeAllWithDeadline(provider, requests, logger);

  /**
   * Applies the gateway's answer in the caller's transaction: the account, then the payment
   * locked (the order every writer of an account's payments takes); a payment already final
   * is left as it is. `offlineReference`: money recorded by ops (an awaiting payment).
   */
  async function settleIn(tx: Db, paymentId: string, result: ChargeResult, offlineReference?: string): Promise<{ payment: repo.PaymentRow; settledNow: boolean }> {
    const found = await repo.findPayment(tx, paymentId);
    if (!found) throw new AppError('payment_not_found', `No payment ${paymentId}`);
    const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
    let payment = (await repo.findPayment(tx, paymentId, { forUpdate: true }))!;
    const now = await nowForAccount(tx, account, clock);
    const settleable = inFlight(payment.status) || (payment.status === 'awaiting_confirmation' && offlineReference !== undefined);
    if (!settleable) return { payment, settledNow: false };
    const handler = handlerOf(payment.purpose);
    const settling: Settling = { tx, payment, account, now };
    // The invoice was settled another way meanwhile (ops recorded a wire, a void after dunning):
    // what this payment was for is done, so its purpose is left alone.
    const invoice = payment.invoiceId ? await billingRepo.findInvoice(tx, payment.invoiceId) : undefined;
    const invoiceSettled = invoice !== undefined && invoice.status !== 'open';

    if (result.status === 'succeeded' && invoiceSettled) {
      payment = await repo.updatePayment(tx, paymentId, {
        status: 'succeeded',
        providerReference: offlineReference === undefined ? result.reference : null,
        offlineReference: offlineReference ?? null,
        updatedAt: now,
      });
      await appendEvents(tx, now, [
        succeededEvent(payment, {}),
        {
          type: 'payment.overpaid',
          accountId: payment.accountId,
          payload: { accountId: payment.accountId, paymentId, invoiceId: invoice.id, amount: payment.amount, currency: payment.currency, invoiceStatus: invoice.status },
        },
      ]);
      logger.warn({ paymentId, invoiceId: invoice.id, invoiceStatus: invoice.status }, 'money arrived for an invoice already settled: refund it');
      return { payment, settledNow: true };
    }
    if (result.status === 'succeeded') {
      const known = (await handler.fields?.(settling)) ?? {};
      const effects = await handler.succeeded(settling);
      payment = await repo.updatePayment(tx, paymentId, {
        status: 'succeeded',
        invoiceId: effects.invoiceId ?? payment.invoiceId,
        providerReference: offlineReference === undefined ? result.reference : null,
        offlineReference: offlineReference ?? null,
        updatedAt: now,
      });
      // Paid by card while a wire transfer was awaited (or the other way round): the other will not come.
      if (payment.invoiceId) await repo.supersedeAwaiting(tx, payment.invoiceId, payment.id, now);
      await appendEvents(tx, now, [...(effects.before ?? []), succeededEvent(payment, { ...known, ...effects.fields }), ...(effects.after ?? [])]);
      return { payment, settledNow: true };
    }
    if (result.status === 'failed') {
      const known = (await handler.fields?.(settling)) ?? {};
      payment = await repo.updatePayment(tx, paymentId, {
        status: 'failed',
        failureCode: result.code,
        failureMessage: result.message,
        providerReference: result.reference,
        updatedAt: now,
      });
      await appendEvents(tx, now, [failedEvent(payment, known)]);
      // A decline of an invoice settled meanwhile means nothing for its purpose (no dunning step).
      if (invoiceSettled) return { payment, settledNow: true };
      const effects = await handler.failed({ ...settling, payment }, { code: result.code, message: result.message });
      if (effects.after?.length) await appendEvents(tx, now, effects.after);
      return { payment, settledNow: true };
    }
    // Unknown: reconciliation finds it (an awaiting payment stays awaiting).
    if (payment.status === 'processing') payment = await repo.updatePayment(tx, paymentId, { status: 'unknown', updatedAt: now });
    return { payment, settledNow: false };
  }

  /**
   * Settles in a transaction of its own; `within` runs in it after the payment is settled
   * (or found final), to read the caller's answer and record it with the change.
   */
  async function settle<T = undefined>(
    paymentId: string,
    result: ChargeResult,
    opts: { within?: (tx: Db, payment: repo.PaymentRow, settledNow: boolean) => Promise<T> } = {},
  ): Promise<{ payment: repo.PaymentRow; settledNow: boolean; value: T }> {
    const done = await db.transaction(async (tx) => {
      const settled = await settleIn(tx, paymentId, result);
      const value = opts.within ? await opts.within(tx, settled.payment, settled.settledNow) : (undefined as T);
      return { ...settled, value };
    });
    // Committed (an upgrade active, credits bought, a renewal paid): this process's caches drop the account now.
    if (done.settledNow) deps.accountChanged(done.payment.accountId);
    return done;
  }

  /**
   * Successes of a batch settled together (a renewal wave): the purpose's bulk step where it
   * has one, the payments marked in one statement. Returns what must go through `settle` one
   * by one instead (a purpose without a bulk step, or a case its bulk step does not take).
   */
  async function settleSucceededMany(items: Array<{ paymentId: string; accountId: string; reference: string }>): Promise<string[]> {
    if (items.length === 0) return [];
    return db.transaction(async (tx) => {
      await repo.lockAccounts(tx, items.map((i) => i.accountId));
      const rows = (await repo.findPayments(tx, items.map((i) => i.paymentId))).filter((p) => inFlight(p.status));
      const now = clock.now();
      const passOn: string[] = [];
      const paid: Array<{ paymentId: string; reference: string; fields?: Record<string, unknown>; after: NewEvent[] }> = [];
      const references = new Map(items.map((i) => [i.paymentId, i.reference]));
      for (const purpose of new Set(rows.map((r) => r.purpose))) {
        const ofPurpose = rows.filter((r) => r.purpose === purpose);
        const bulk = handlerOf(purpose).succeededMany;
        if (!bulk) {
          passOn.push(...ofPurpose.map((r) => r.id));
          continue;
        }
        const done = await bulk(tx, ofPurpose, now);
        passOn.push(...done.passOn);
        paid.push(...done.settled.map((s) => ({ ...s, reference: references.get(s.paymentId)! })));
      }
      await repo.markSucceededMany(tx, paid, now);
      const byId = new Map(rows.map((r) => [r.id, r]));
      const events = paid.flatMap((p): NewEvent[] => {
        const payment = { ...byId.get(p.paymentId)!, status: 'succeeded' as const };
        return [succeededEvent(payment, p.fields ?? {}), ...p.after];
      });
      await appendEvents(tx, now, events);
      return passOn;
    });
  }

  /**
   * A payment met again (a request retried with its Idempotency-Key, the sweep): one whose
   * answer was lost is reconciled from the gateway's record (see resolveUnknownCharge); a
   * final one is only read back (settling it changes nothing). `within` as for settle.
   */
  async function reconcile<T = undefined>(payment: repo.PaymentRow, opts: { within?: (tx: Db, payment: repo.PaymentRow, settledNow: boolean) => Promise<T> } = {}) {
    if (!inFlight(payment.status)) return settle(payment.id, { status: 'unknown' }, opts);
    const method = (await repo.findPaymentMethod(db, payment.paymentMethodId))!;
    return settle(payment.id, await resolveUnknownCharge(provider, payment, chargeRequestOf(payment, method), logger), opts);
  }

  /**
   * The worker's sweep, for every purpose: payments unknown for 30 s of real time, oldest
   * first. 500 a pass: a renewal wave cut short by a crash leaves up to 2,000 in flight.
   */
  async function reconcileStale(limit = 500): Promise<{ checked: number; succeeded: number; failed: number; unknown: number }> {
    const stale = await repo.listUnresolvedPayments(db, 30_000, limit);
    const counts = { checked: stale.length, succeeded: 0, failed: 0, unknown: 0 };
    for (const payment of stale) {
      try {
        const { payment: after } = await reconcile(payment);
        if (after.status === 'succeeded') counts.succeeded++;
        else if (after.status === 'failed') counts.failed++;
        else counts.unknown++;
      } catch (err) {
        // One payment that cannot settle must not stop the others.
        logger.error({ err, paymentId: payment.id }, 'could not reconcile payment');
      }
    }
    return counts;
  }

  /**
   * Ops record a wire transfer or cheque: the payment succeeds and its purpose completes (an
   * upgrade activates, a renewal pays its invoice). Recording the same reference again
   * answers the same; another reference, or a payment not awaiting money, is refused.
   */
  async function confirmOffline(paymentId: string, input: { reference: string; amount?: number }): Promise<PaymentResult> {
    const confirmed = await db.transaction(async (tx) => {
      const found = await repo.findPayment(tx, paymentId);
      if (!found) throw new AppError('payment_not_found', `No payment ${paymentId}`);
      await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true });
      const payment = (await repo.findPayment(tx, paymentId, { forUpdate: true }))!;
      if (payment.status === 'succeeded' && payment.offlineReference !== null) {
        if (payment.offlineReference !== input.reference) {
          throw new AppError('payment_not_confirmable', `Payment ${paymentId} was already confirmed with reference ${payment.offlineReference}`);
        }
        return resultIn(tx, paymentId);
      }
      if (payment.status !== 'awaiting_confirmation') throw new AppError('payment_not_confirmable', `Payment ${paymentId} is ${payment.status}`);
      // The customer is paying the same invoice by card right now: wait for that answer first.
      const inFlight = payment.invoiceId ? await repo.findInFlightForInvoice(tx, payment.invoiceId) : undefined;
      if (inFlight) throw new AppError('invoice_payment_in_progress', `Payment ${inFlight.id} of the same invoice is in flight; confirm again once it settled`, { paymentId: inFlight.id });
      if (input.amount !== undefined && input.amount !== payment.amount) {
        throw new AppError('payment_amount_mismatch', `The amount due is ${payment.amount}; ${input.amount} was confirmed`, { amountDue: payment.amount });
      }
      await settleIn(tx, paymentId, { status: 'succeeded', reference: input.reference }, input.reference);
      return resultIn(tx, paymentId);
    });
    deps.accountChanged(confirmed.account.id);
    return confirmed;
  }

  /**
   * Ops record money received for an open invoice that no payment awaits (a renewal the
   * customer settled by NEFT or cheque instead of paying by card): a payment of the
   * invoice's purpose is recorded with the reference and settles it, as a confirmed wire
   * would. Recording the same reference again answers the same. An invoice with a payment
   * awaiting money is confirmed through that payment.
   */
  async function recordOffline(invoiceId: string, viewer: { accountId: string | null }, input: { reference: string; amount?: number; methodType: 'wire_transfer' | 'cheque' }): Promise<PaymentResult> {
    const found = await billingRepo.findInvoice(db, invoiceId);
    if (!found || (viewer.accountId && viewer.accountId !== found.accountId)) throw new AppError('invoice_not_found', `No invoice ${invoiceId}`);
    const awaited = await repo.findAwaitingForInvoice(db, invoiceId);
    if (awaited) return confirmOffline(awaited.id, input);
    const paid = await db.transaction(async (tx) => {
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const invoice = (await billingRepo.findInvoice(tx, invoiceId))!;
      const recorded = await repo.findSucceededOfflineForInvoice(tx, invoiceId);
      if (recorded?.offlineReference === input.reference) return resultIn(tx, recorded.id);
      const { purpose, request } = await invoicePurpose(tx, invoice);
      const inFlight = await repo.findInFlightForInvoice(tx, invoiceId);
      if (inFlight) throw new AppError('invoice_payment_in_progress', `Payment ${inFlight.id} of invoice ${invoice.number} is in flight; record the money once it settled`, { paymentId: inFlight.id });
      if (input.amount !== undefined && input.amount !== amountDue(invoice)) {
        throw new AppError('payment_amount_mismatch', `The amount due is ${amountDue(invoice)}; ${input.amount} was recorded`, { amountDue: amountDue(invoice) });
      }
      const now = await nowForAccount(tx, account, clock);
      // How this money came, not a method the customer saved: recorded as removed, never listed or charged.
      const method = await repo.insertPaymentMethod(tx, { id: newId('pm', now), accountId: account.id, type: input.methodType, reference: null, label: null, last4: null, status: 'removed', removedAt: now, createdAt: now });
      const payment = await open(tx, { accountId: account.id, purpose, offline: true, amount: amountDue(invoice), currency: invoice.currency, method, invoiceId, request: { ...request, invoiceId, recordedBy: 'ops' }, now });
      await settleIn(tx, payment.id, { status: 'succeeded', reference: input.reference }, input.reference);
      return resultIn(tx, payment.id);
    });
    deps.accountChanged(paid.account.id);
    return paid;
  }

  /**
   * A payment with what it bought, as the upgrade and offline confirmation answer it: the
   * account, its live subscription once paid, the invoice. `status` follows the payment.
   */
  async function resultIn(tx: Db, paymentId: string): Promise<PaymentResult> {
    const payment = (await repo.findPayment(tx, paymentId))!;
    const account = (await accountsRepo.findAccount(tx, payment.accountId))!;
    const invoice = payment.invoiceId ? await billingRepo.findInvoice(tx, payment.invoiceId) : undefined;
    const status = payment.status === 'succeeded' ? 'active' : payment.status === 'awaiting_confirmation' ? 'pending_payment' : 'payment_unknown';
    const subscription = status === 'active' ? await subscriptionsRepo.findLiveSubscription(tx, account.id) : undefined;
    const plan = subscription ? await catalogRepo.findPlan(tx, subscription.planId) : undefined;
    const method = subscription ? await repo.findPaymentMethod(tx, subscription.paymentMethodId) : undefined;
    return {
      status,
      account: toAccountDto(account),
      subscription: subscription && plan ? toSubscriptionDto(subscription, plan, method) : null,
      invoice: invoice ? toInvoiceDto(invoice, await billingRepo.linesOf(tx, invoice.id)) : null,
      payment: toPaymentDto(payment),
    };
  }

  async function get(paymentId: string, viewer: { accountId: string | null }) {
    const payment = await repo.findPayment(db, paymentId);
    if (!payment || (viewer.accountId && viewer.accountId !== payment.accountId)) throw new AppError('payment_not_found', `No payment ${paymentId}`);
    return toPaymentDto(payment);
  }

  /** An account's payments, newest first, a page at a time. */
  async function listForAccount(accountId: string, opts: { before?: string; limit: number }) {
    if (!(await accountsRepo.findAccount(db, accountId))) throw new AppError('account_not_found', `No account ${accountId}`);
    const rows = await repo.listPaymentsOfAccount(db, accountId, { before: opts.before, limit: opts.limit + 1 });
    return page(rows.map(toPaymentDto), opts.limit, (p) => p.id);
  }

  return {
    handle,
    open,
    openMany,
    chargeRequestOf,
    charge,
    chargeMany,
    settle,
    settleSucceededMany,
    reconcile,
    reconcileStale,
    confirmOffline,
    recordOffline,
    resultIn,
    get,
    listForAccount,
  };
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;

/** The customer's answer to a declined payment: 402 payment_declined with the gateway's reason. */
export const declinedError = (payment: Pick<repo.PaymentRow, 'id' | 'failureCode' | 'failureMessage'>): AppError =>
  new AppError('payment_declined', payment.failureMessage ?? 'The payment was declined', { declineCode: payment.failureCode, paymentId: payment.id });

/** payment.succeeded or payment.failed: the payment, what it is for, and the purpose's own fields (its subscription). */
function paymentEvent(type: 'payment.succeeded' | 'payment.failed', payment: repo.PaymentRow, fields: Record<string, unknown>): NewEvent {
  return {
    type,
    accountId: payment.accountId,
    payload: {
      accountId: payment.accountId,
      paymentId: payment.id,
      ...(payment.invoiceId ? { invoiceId: payment.invoiceId } : {}),
      amount: payment.amount,
      currency: payment.currency,
      purpose: payment.purpose,
      methodType: payment.methodType,
      ...(type === 'payment.failed' ? { failureCode: payment.failureCode } : {}),
      ...fields,
    },
  };
}

const succeededEvent = (payment: repo.PaymentRow, fields: Record<string, unknown>) => paymentEvent('payment.succeeded', payment, fields);
const failedEvent = (payment: repo.PaymentRow, fields: Record<string, unknown>) => paymentEvent('payment.failed', payment, fields);
