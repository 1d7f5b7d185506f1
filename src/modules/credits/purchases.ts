import type { Db } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { formatAmount } from '../../lib/format.js';
import { newId } from '../../lib/ids.js';
import * as accountsRepo from '../accounts/repo.js';
import { priceCredits, type PricedInvoice } from '../billing/domain.js';
import { taxRegime } from '../billing/tax.js';
import { issueInvoice } from '../billing/issue.js';
import { toInvoiceDto } from '../billing/dto.js';
import * as billingRepo from '../billing/repo.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import { declinedError, isAttended, type PurposeDeps, type Purpose as PaymentPurpose } from '../payments/service.js';
import { toPaymentDto } from '../payments/dto.js';
import { chargeableAfter, mandateApplies, unattendedVerdict, type ActionRequired } from '../payments/mandate.js';
import { chargeableUnattended } from '../payments/methods.js';
import type { ChargeResult, PaymentProvider } from '../payments/provider.js';
import * as paymentsRepo from '../payments/repo.js';
import { saveWithProvider, type StoredMethod } from '../payments/saving.js';
import type { PaymentMethodInput } from '../payments/schemas.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { complete as completeIdempotency, type IdempotencyHandle } from '../idempotency/repo.js';
import * as repo from './repo.js';

export interface PurchaseDeps extends PurposeDeps {
  /** Saves a method given with a purchase or auto-recharge settings. */
  provider: PaymentProvider;
  maxFailures: number;
  retryMinutes: number;
  /** Days the customer has to pay an auto-recharge the e-mandate did not cover. */
  invoiceDueDays: number;
}

type Purpose = Extract<PaymentPurpose, 'purchase' | 'recharge'>;

/**
 * Buying credits: a top-up the customer asks for, or an auto-recharge when a debit leaves
 * the balance below the threshold. Either way the payment row comes first, the gateway is
 * called outside any transaction under the payment's id, and the credit is written only
 * when the money arrived, with its invoice, in one transaction.
 */
export function createPurchaseService(deps: PurchaseDeps) {
  const { db, clock, provider, logger, payments } = deps;

  /** Credits with their tax, as the account's invoices are taxed. */
  const price = (credits: number, account: accountsRepo.AccountRow, purpose: Purpose): PricedInvoice =>
    priceCredits(account.currency, credits, purpose === 'recharge' ? 'Auto-recharge of prepaid credits' : 'Prepaid credits for calls and SMS', taxRegime(deps.taxation, account));

  /** The method to charge when none is given: auto-recharge's own while it is saved, else the account's default. Never a removed one. */
  async function savedMethodId(tx: Db, accountId: string): Promise<string | null> {
    const settings = await repo.findAutoRecharge(tx, accountId);
    const own = settings ? await paymentsRepo.findPaymentMethod(tx, settings.paymentMethodId) : undefined;
    if (own?.status === 'active') return own.id;
    return (await paymentsRepo.findDefaultMethod(tx, accountId))?.id ?? null;
  }

  /**
   * Checks a method given with a purchase or auto-recharge settings and saves it with the
   * gateway, before (never inside) the transaction that records it. The checks that would
   * refuse the request come first, in the order the transaction makes them, so a refused
   * request never reaches the gateway.
   */
  async function saveMethod(accountId: string, method: PaymentMethodInput, purpose: 'purchase' | 'auto_recharge'): Promise<StoredMethod & { id: string }> {
    const account = await accountsRepo.findAccount(db, accountId);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    if (purpose === 'purchase') assertPaidPlan(account);
    if (method.type === 'wire_transfer' || method.type === 'cheque') {
      throw new AppError('payment_method_not_allowed', 'Credits are bought by card, UPI or net banking');
    }
    if ((method.type === 'upi' || method.type === 'netbanking') && account.country !== 'IN') {
      throw new AppError('payment_method_not_allowed', `${method.type === 'upi' ? 'UPI' : 'Net banking'} is available to accounts in India only`);
    }
    if (purpose === 'auto_recharge' && !chargeableUnattended(method.type)) throw notUnattended();
    const id = newId('pm', clock.now());
    return { id, ...(await saveWithProvider(provider, method, id, logger)) };
  }

  /** Records a method given with a purchase or auto-recharge: the account's default only if it has none. */
  async function insertMethod(tx: Db, accountId: string, method: StoredMethod & { id: string }, now: Date) {
    const row = await paymentsRepo.insertPaymentMethod(tx, { ...method, accountId, createdAt: now });
    if (!(await paymentsRepo.findDefaultMethod(tx, accountId))) await paymentsRepo.setDefaultMethod(tx, accountId, row.id);
    return row;
  }

  function assertPaidPlan(account: accountsRepo.AccountRow) {
    if (account.status !== 'active' && account.status !== 'past_due') {
      throw new AppError('paid_plan_required', `Credits are bought on a paid plan; the account is ${account.status}`);
    }
  }

  const notUnattended = () => new AppError('invalid_auto_recharge', 'Auto-recharge needs a card or UPI method, which can be charged unattended');

  /**
   * A top-up: charges the given or the saved method, credits only after the money arrived.
   * A retry with the same Idempotency-Key answers with the payment the first request made
   * (reconciling it if its answer was lost) rather than charging again.
   */
  async function purchase(accountId: string, input: { amount: number; paymentMethod?: PaymentMethodInput }, idempotency: IdempotencyHandle | null) {
    const mine = idempotency ? await paymentsRepo.findPaymentByIdempotency(db, accountId, idempotency) : undefined;
    if (mine) return declinedOr((await payments.reconcile(mine, { within: (tx, settled) => answer(tx, settled, idempotency) })).value);
    const saved = input.paymentMethod ? await saveMethod(accountId, input.paymentMethod, 'purchase') : null;
    const payment = await db.transaction(async (tx) => {
      const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: true });
      if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
      assertPaidPlan(account);
      const now = await nowForAccount(tx, account, clock);
      const methodId = saved ? (await insertMethod(tx, accountId, saved, now)).id : await savedMethodId(tx, accountId);
      const method = methodId ? await paymentsRepo.findPaymentMethod(tx, methodId) : undefined;
      if (!method || !['card', 'upi', 'netbanking'].includes(method.type)) {
        throw new AppError('payment_method_not_allowed', 'Credits are bought by card, UPI or net banking: give a method');
      }
      return openPayment(tx, account, 'purchase', input.amount, method.id, now, idempotency);
    });
    return declinedOr(await settle(payment.id, await payments.charge(payment), idempotency));
  }

  function declinedOr<T extends { payment: { status: string; failureCode: string | null; failureMessage: string | null; id: string } }>(settled: T): T {
    if (settled.payment.status !== 'failed') return settled;
    throw declinedError(settled.payment);
  }

  async function openPayment(
    tx: Db,
    account: accountsRepo.AccountRow,
    purpose: Purpose,
    amount: number,
    paymentMethodId: string,
    now: Date,
    idempotency: IdempotencyHandle | null = null,
  ) {
    const method = (await paymentsRepo.findPaymentMethod(tx, paymentMethodId))!;
    const priced = price(amount, account, purpose);
    return payments.open(tx, {
      accountId: account.id,
      purpose,
      amount: priced.total,
      currency: account.currency,
      method,
      request: { credits: amount, tax: priced.tax, priced, idempotency: idempotency ? { apiKeyId: idempotency.apiKeyId, key: idempotency.key } : null },
      now,
    });
  }

  /** What a credits payment was opened for: the credits, and the invoice it will issue, as priced then. */
  type CreditsRequest = { credits: number; tax: { label: string; rateBps: number; amount: number }; priced?: PricedInvoice };

  /** What a credits payment's answer means: paid, an invoice and the credit (once: the ledger's source key is the payment); a failed recharge backs off. */
  for (const purpose of ['purchase', 'recharge'] as const) {
    payments.handle(purpose, {
      describe: (payment) => `${purpose === 'recharge' ? 'Auto-recharge' : 'Credits'} for ${payment.accountId}`,
      unattended: purpose === 'recharge',
      async succeeded({ tx, payment, account, now }) {
        const request = payment.request as CreditsRequest;
        // An invoice it pays (an auto-recharge that waited for the customer), or one issued now, paid.
        const invoice = payment.invoiceId
          ? (await billingRepo.markInvoicesPaid(tx, [payment.invoiceId], now), (await billingRepo.findInvoice(tx, payment.invoiceId))!)
          : await issueInvoice(tx, creditsInvoice(account, request.priced ?? price(request.credits, account, purpose), 'paid', now, now));
        await repo.applyEntry(tx, {
          accountId: account.id,
          currency: account.currency,
          amount: request.credits,
          kind: purpose,
          sourceKey: `payment:${payment.id}`,
          description: `${purpose === 'recharge' ? 'Auto-recharge' : 'Credits purchase'}, invoice ${invoice.number}`,
          at: now,
        });
        if (purpose === 'recharge') await repo.updateAutoRecharge(tx, account.id, { consecutiveFailures: 0, nextAttemptAt: null, updatedAt: now });
        const ids = { accountId: account.id, paymentId: payment.id, invoiceId: invoice.id };
        // An invoice issued now (not one the customer paid that waited for them) is announced as created too.
        const created: NewEvent[] = payment.invoiceId
          ? []
          : [{ type: 'invoice.created', accountId: account.id, payload: { accountId: account.id, invoiceId: invoice.id, number: invoice.number, total: invoice.total, status: 'paid' } }];
        return {
          invoiceId: invoice.id,
          after: [
            ...created,
            { type: 'invoice.paid', accountId: account.id, payload: { ...ids, number: invoice.number, total: invoice.total, kind: 'credits', currency: invoice.currency } },
            {
              type: purpose === 'recharge' ? 'credits.recharged' : 'credits.purchased',
              accountId: account.id,
              payload: { ...ids, credits: request.credits, total: payment.amount, currency: payment.currency },
            },
          ],
        };
      },
      // A declined auto-recharge backs off; the customer's own attempt at its invoice was theirs to see.
      failed: async ({ tx, payment, account, now }, failure) =>
        purpose === 'recharge' && !isAttended(payment) ? { after: [await recordRechargeFailure(tx, account.id, failure.code, now)] } : {},
    });
  }

  /** Applies the gateway's answer (see the handlers above) and answers for it. */
  async function settle(paymentId: string, result: ChargeResult, idempotency: IdempotencyHandle | null = null) {
    return (await payments.settle(paymentId, result, { within: (tx, settled) => answer(tx, settled, idempotency) })).value;
  }

  /** A credits payment's answer, read in the settling transaction; a credited one is recorded for the Idempotency-Key with the credit. */
  async function answer(tx: Db, settled: paymentsRepo.PaymentRow, idempotency: IdempotencyHandle | null) {
    const invoice = settled.invoiceId ? await billingRepo.findInvoice(tx, settled.invoiceId) : undefined;
    const result = {
      status: settled.status === 'succeeded' ? ('credited' as const) : settled.status === 'failed' ? ('failed' as const) : ('payment_unknown' as const),
      balance: (await repo.balanceOf(tx, settled.accountId)).balance,
      payment: toPaymentDto(settled),
      invoice: invoice ? toInvoiceDto(invoice, await billingRepo.linesOf(tx, invoice.id)) : null,
    };
    // Recorded with the credit, so a crash after the commit cannot make a retry charge again.
    if (idempotency && result.status === 'credited') {
      await completeIdempotency(tx, idempotency, 201, JSON.parse(JSON.stringify(result)));
      idempotency.completed = true;
    }
    return result;
  }

  /** One more failure in a row: retry later with a doubling pause, or switch off at the limit. */
  async function recordRechargeFailure(tx: Db, accountId: string, failureCode: string, now: Date): Promise<NewEvent> {
    const failures = (await repo.countRechargeFailure(tx, accountId, now)).consecutiveFailures;
    if (failures >= deps.maxFailures) {
      await repo.updateAutoRecharge(tx, accountId, { enabled: false, nextAttemptAt: null });
      return { type: 'credits.recharge_failed', accountId, payload: { accountId, failureCode, failures, disabled: true } };
    }
    const nextAttemptAt = new Date(now.getTime() + deps.retryMinutes * 60_000 * 2 ** (failures - 1));
    await repo.updateAutoRecharge(tx, accountId, { nextAttemptAt });
    return { type: 'credits.recharge_failed', accountId, payload: { accountId, failureCode, failures, disabled: false, nextAttemptAt: nextAttemptAt.toISOString() } };
  }

  /** A credits invoice: paid (the money arrived) or open (an auto-recharge waiting for the customer). */
  const creditsInvoice = (account: accountsRepo.AccountRow, priced: PricedInvoice, status: 'paid' | 'open', now: Date, dueAt: Date) => ({
    accountId: account.id,
    subscriptionId: null,
    kind: 'credits' as const,
    status,
    priced,
    planId: account.planId,
    billingCycle: 'monthly' as const,
    period: { start: now, end: now },
    now,
    dueAt,
  });

  /** Auto-recharges due now (per account clock): the scheduler hands them to the queue. */
  const findDueRecharges = (limit = 500): Promise<Array<{ accountId: string; dueAt: Date }>> => repo.listDueRecharges(db, clock.now(), limit);

  /**
   * Runs one auto-recharge if it is still wanted: enabled, due, the balance still below the
   * threshold, the account on a paid plan, and none in flight (a unique index makes sure).
   */
  async function recharge(accountId: string): Promise<'recharged' | 'failed' | 'unknown' | 'skipped'> {
    const payment = await db.transaction(async (tx) => {
      const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: true });
      const settings = await repo.findAutoRecharge(tx, accountId, { forUpdate: true });
      if (!account || !settings) return null;
      const now = await nowForAccount(tx, account, clock);
      if (!settings.enabled || !settings.nextAttemptAt || settings.nextAttemptAt > now) return null;
      // Holds count: credits reserved by calls in progress are as good as spent.
      const balance = (await repo.balanceOf(tx, accountId)).available;
      const sub = await subscriptionsRepo.findActiveSubscription(tx, accountId);
      const method = await paymentsRepo.findPaymentMethod(tx, settings.paymentMethodId);
      if (balance >= settings.threshold || account.status !== 'active' || !sub || sub.cancelAtPeriodEnd || !method || !chargeableUnattended(method.type)) {
        await repo.updateAutoRecharge(tx, accountId, { nextAttemptAt: null });
        return null;
      }
      if (await paymentsRepo.hasRechargeInFlight(tx, accountId)) {
        // One is in flight: look again in a minute, after reconciliation had its chance.
        await repo.updateAutoRecharge(tx, accountId, { nextAttemptAt: new Date(now.getTime() + 60_000) });
        return null;
      }
      if (mandateApplies(account.currency, method.type) && !(await mandateAllows(tx, account, settings, method, now))) return null;
      await repo.updateAutoRecharge(tx, accountId, { nextAttemptAt: null, noticeSentAt: null });
      return openPayment(tx, account, 'recharge', settings.amount, settings.paymentMethodId, now);
    });
    if (!payment) return 'skipped';
    const settled = await settle(payment.id, await payments.charge(payment));
    return settled.status === 'credited' ? 'recharged' : settled.status === 'failed' ? 'failed' : 'unknown';
  }

  /**
   * The e-mandate rules before an unattended charge: never above the cap, and only once the
   * pre-debit notice has been out for its window. Sends the notice when none is out yet.
   */
  async function mandateAllows(
    tx: Db,
    account: accountsRepo.AccountRow,
    settings: repo.AutoRechargeRow,
    method: paymentsRepo.PaymentMethodRow,
    now: Date,
  ): Promise<boolean> {
    const total = price(settings.amount, account, 'recharge').total;
    const verdict = unattendedVerdict(deps.mandate, method, account.currency, total, now);
    if (!verdict.ok) {
      await awaitCustomer(tx, account, settings, verdict.reason === 'not_unattended' ? 'no_method' : verdict.reason, now);
      return false;
    }
    const noticeAt = settings.noticeSentAt ?? now;
    if (!settings.noticeSentAt) {
      await repo.updateAutoRecharge(tx, account.id, { noticeSentAt: now });
      await appendEvents(tx, now, [
        {
          type: 'credits.recharge_notice',
          accountId: account.id,
          payload: { accountId: account.id, amount: total, currency: account.currency, chargeAt: chargeableAfter(deps.mandate, now).toISOString() },
        },
      ]);
    }
    const chargeAt = chargeableAfter(deps.mandate, noticeAt);
    if (chargeAt <= now) return true;
    await repo.updateAutoRecharge(tx, account.id, { nextAttemptAt: chargeAt });
    return false;
  }

  /**
   * A recharge the e-mandate does not cover (above its maximum, ended): not attempted and not
   * a decline. Its invoice is issued open, waiting for the customer to pay it
   * (POST /v1/invoices/{id}/pay) by its due date; auto-recharge stays on, but issues no other
   * while that one waits. Unpaid past its due date, it is written off and the next recharge
   * asks again.
   */
  async function awaitCustomer(tx: Db, account: accountsRepo.AccountRow, settings: repo.AutoRechargeRow, reason: ActionRequired, now: Date): Promise<void> {
    await repo.updateAutoRecharge(tx, account.id, { nextAttemptAt: null, noticeSentAt: null, updatedAt: now });
    const waiting = await billingRepo.findCreditsAwaitingCustomer(tx, account.id);
    if (waiting && waiting.dueAt > now) return;
    if (waiting) await billingRepo.voidInvoice(tx, waiting.id);
    const payBy = new Date(now.getTime() + deps.invoiceDueDays * 86_400_000);
    const invoice = await issueInvoice(tx, { ...creditsInvoice(account, price(settings.amount, account, 'recharge'), 'open', now, payBy), actionRequired: reason });
    await appendEvents(tx, now, [
      { type: 'invoice.created', accountId: account.id, payload: { accountId: account.id, invoiceId: invoice.id, number: invoice.number, total: invoice.total, status: 'requires_action' } },
      {
        type: 'invoice.requires_action',
        accountId: account.id,
        payload: { accountId: account.id, kind: 'credits', invoiceId: invoice.id, number: invoice.number, total: invoice.total, currency: invoice.currency, reason, payBy: payBy.toISOString() },
      },
    ]);
  }

  /** Auto-recharge settings; the method must be chargeable unattended (card, UPI). */
  async function setAutoRecharge(accountId: string, input: { enabled: boolean; threshold: number; amount: number; paymentMethod?: PaymentMethodInput }) {
    if (input.threshold >= input.amount) throw new AppError('invalid_auto_recharge', 'The recharge amount must be larger than the threshold');
    const saved = input.paymentMethod ? await saveMethod(accountId, input.paymentMethod, 'auto_recharge') : null;
    return db.transaction(async (tx) => {
      const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: true });
      if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
      const now = await nowForAccount(tx, account, clock);
      const methodId = saved ? (await insertMethod(tx, accountId, saved, now)).id : await savedMethodId(tx, accountId);
      const method = methodId ? await paymentsRepo.findPaymentMethod(tx, methodId) : undefined;
      if (!method || !chargeableUnattended(method.type)) throw notUnattended();
      const verdict = unattendedVerdict(deps.mandate, method, account.currency, price(input.amount, account, 'recharge').total, now);
      if (!verdict.ok) {
        const limit = method.mandateMaxAmount ?? deps.mandate.capInr;
        throw new AppError(
          'invalid_auto_recharge',
          verdict.reason === 'mandate_expired'
            ? 'The e-mandate of this method has ended: save a method with a current mandate'
            : `An unattended charge of this method may take at most ${formatAmount(limit, account.currency)} (its e-mandate), tax included`,
        );
      }
      const balance = (await repo.balanceOf(tx, accountId)).available;
      const current = await repo.findAutoRecharge(tx, accountId);
      // Saving the same settings again must not skip the backoff of failed recharges: only
      // switching on or changing the method starts afresh.
      const fresh = !current || (!current.enabled && input.enabled) || current.paymentMethodId !== method.id;
      const row = {
        accountId,
        enabled: input.enabled,
        threshold: input.threshold,
        amount: input.amount,
        paymentMethodId: method.id,
        consecutiveFailures: fresh ? 0 : current.consecutiveFailures,
        noticeSentAt: fresh ? null : current.noticeSentAt,
        nextAttemptAt: !input.enabled
          ? null
          : fresh
            ? balance < input.threshold
              ? now // already below the new threshold: recharge now
              : null
            : (current.nextAttemptAt ?? (balance < input.threshold ? now : null)),
        updatedAt: now,
      };
      await repo.upsertAutoRecharge(tx, row);
      await appendEvents(tx, now, [{ type: 'credits.auto_recharge_updated', accountId, payload: { accountId, enabled: input.enabled, threshold: input.threshold, amount: input.amount } }]);
      return { enabled: row.enabled, threshold: row.threshold, amount: row.amount };
    });
  }

  return { purchase, recharge, findDueRecharges, setAutoRecharge, settle };
}

export type PurchaseService = ReturnType<typeof createPurchaseService>;
