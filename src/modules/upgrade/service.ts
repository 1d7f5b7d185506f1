import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, billingCycles } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import * as accountsRepo from '../accounts/repo.js';
import { toAccountDto } from '../accounts/service.js';
import { taxFor, type PricedInvoice } from '../billing/domain.js';
import { issueInvoice } from '../billing/issue.js';
import { toInvoiceDto } from '../billing/dto.js';
import * as billingRepo from '../billing/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import * as creditsRepo from '../credits/repo.js';
import { appendEvents } from '../events/repo.js';
import { complete as completeIdempotency, type IdempotencyHandle } from '../idempotency/repo.js';
import { toPaymentDto } from '../payments/dto.js';
import { isOffline } from '../payments/methods.js';
import { chargeMethodOf, chargeWithDeadline, resolveUnknownCharge } from '../payments/charging.js';
import type { ChargeResult, PaymentProvider } from '../payments/provider.js';
import * as paymentsRepo from '../payments/repo.js';
import { saveWithProvider } from '../payments/saving.js';
import type { PaymentMethodInput } from '../payments/schemas.js';
import { toSubscriptionDto } from '../subscriptions/dto.js';
import { nowForAccount } from '../test-clocks/time.js';
import { periodAt } from '../subscriptions/periods.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import { evaluateUpgrade, type Evaluation, type Refusal } from './domain.js';
import type { Quote, QuoteRequest, UpgradeRequest, UpgradeResult } from './schemas.js';

/** What a payment is for: the upgrade as asked and priced, kept on the payment row. */
interface UpgradeSnapshot {
  planId: string;
  billingCycle: 'monthly' | 'quarterly' | 'annual';
  whatsappAddon: boolean;
  initialCredits: number;
  autoRecharge: UpgradeRequest['autoRecharge'] | null;
  priced: PricedInvoice;
  idempotency: { apiKeyId: string; key: string } | null;
}

export interface UpgradeDeps {
  db: Db;
  clock: Clock;
  provider: PaymentProvider;
  logger: Logger;
  taxRates: Record<string, number>;
  invoiceDueDays: number;
  /** Settles a renewal invoice paid offline (the renewals service owns that). */
  confirmRenewalPayment: (paymentId: string, reference: string) => Promise<boolean>;
}

export function createUpgradeService(deps: UpgradeDeps) {
  const { db, clock, provider, logger } = deps;

  async function loadContext(tx: Db, accountId: string, planId: string, cycleCode: string, lock: boolean) {
    const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: lock });
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    const plan = await catalogRepo.findPlan(tx, planId);
    // A custom plan of another account is as unknown to this one as a plan that does not exist.
    if (!plan || plan.kind === 'trial' || (plan.kind === 'custom' && plan.offeredToAccountId !== accountId)) {
      if (plan?.kind === 'trial') throw new AppError('plan_not_offered', 'The trial is not a plan one upgrades to');
      throw new AppError('plan_not_found', `No plan ${planId}`);
    }
    const [price] = (await catalogRepo.pricesOf(tx, [plan.id])).filter((p) => p.currency === account.currency);
    const [cycle] = await tx.select().from(billingCycles).where(eq(billingCycles.code, cycleCode as 'monthly'));
    if (!cycle) throw new AppError('validation_failed', `No billing cycle ${cycleCode}`);
    return { account, plan, price, cycle, tax: taxFor(account.country, deps.taxRates) };
  }

  function evaluate(ctx: Awaited<ReturnType<typeof loadContext>>, choice: Parameters<typeof evaluateUpgrade>[1], now: Date): Evaluation {
    const result = evaluateUpgrade({ ...ctx, now }, choice);
    if ('refused' in result) throw refusalError(result.refused);
    return result;
  }

  async function quote(accountId: string, request: QuoteRequest): Promise<Quote> {
    const ctx = await loadContext(db, accountId, request.planId, request.billingCycle, false);
    const now = await nowForAccount(db, ctx.account, clock);
    const evaluation = evaluate(ctx, choiceOf(request, request.paymentMethodType), now);
    const { priced } = evaluation;
    return {
      accountId,
      plan: { id: ctx.plan.id, code: ctx.plan.code, version: ctx.plan.version, name: ctx.plan.name },
      billingCycle: { code: ctx.cycle.code, months: ctx.cycle.months, discountBps: ctx.cycle.discountBps },
      currency: priced.currency,
      period: evaluation.period,
      lines: priced.lines,
      subtotal: priced.subtotal,
      discountTotal: priced.discountTotal,
      tax: priced.tax,
      total: priced.total,
      entitlementsAfter: ctx.plan.entitlements,
      allowedPaymentMethods: evaluation.allowedMethods,
      canUpgrade: evaluation.blockers.length === 0,
      blockers: evaluation.blockers.map((b) => ({ code: b.code, detail: b.detail })),
    };
  }

  /**
   * The upgrade: validate and record the payment (one transaction), charge outside any
   * transaction under the payment's id, then activate or record the decline (another).
   * Wire transfer and cheque stop at an open invoice until ops confirm the money.
   */
  async function upgrade(accountId: string, request: UpgradeRequest, idempotency: IdempotencyHandle | null): Promise<UpgradeResult> {
    // The same request retried (its first answer was lost, or was "unknown"): answer with its payment.
    const mine = idempotency ? await paymentsRepo.findPaymentByIdempotency(db, accountId, idempotency) : undefined;
    if (mine) return answerFor(mine, idempotency!);

    // An earlier payment whose result nobody knows is settled before anything else is tried.
    const open = await paymentsRepo.findOpenUpgradePayment(db, accountId);
    if (open && (open.status === 'unknown' || open.status === 'processing')) {
      const settled = await reconcile(open, null).catch((err) => {
        if (err instanceof AppError && err.code === 'payment_declined') return null; // failed: a new attempt may go ahead
        throw err;
      });
      if (settled?.payment.status === 'succeeded') {
        throw new AppError('account_not_in_trial', `The account was upgraded by payment ${open.id}, whose result was just confirmed`);
      }
      if (settled) throw new AppError('upgrade_in_progress', `Payment ${open.id} is still being confirmed; retry later`, { paymentId: open.id });
    }

    const method = request.paymentMethod;
    // The method is saved with the gateway before the transaction (never inside one), and only
    // for a request that would be admitted: the same checks run unlocked first.
    if (!isOffline(method.type)) await admit(db, accountId, request, false);
    const methodId = newId('pm', clock.now());
    const stored = await saveWithProvider(provider, method, methodId, logger);
    const prepared = await db.transaction(async (tx) => {
      const { ctx, now, evaluation } = await admit(tx, accountId, request, true);
      const paymentMethod = await paymentsRepo.insertPaymentMethod(tx, { id: methodId, accountId, ...stored, createdAt: now });
      const snapshot: UpgradeSnapshot = {
        planId: ctx.plan.id,
        billingCycle: ctx.cycle.code,
        whatsappAddon: request.addOns.whatsapp,
        initialCredits: request.initialCredits,
        autoRecharge: request.autoRecharge ?? null,
        priced: evaluation.priced,
        idempotency: idempotency ? { apiKeyId: idempotency.apiKeyId, key: idempotency.key } : null,
      };
      const paymentId = newId('pay', now);

      if (isOffline(method.type)) {
        const invoice = await issueUpgradeInvoice(tx, {
          accountId,
          snapshot,
          period: evaluation.period,
          status: 'open',
          now,
          dueAt: new Date(now.getTime() + deps.invoiceDueDays * 86_400_000),
        });
        await paymentsRepo.insertPayment(tx, {
          id: paymentId,
          accountId,
          purpose: 'upgrade',
          status: 'awaiting_confirmation',
          amount: evaluation.priced.total,
          currency: evaluation.priced.currency,
          methodType: method.type,
          paymentMethodId: paymentMethod.id,
          invoiceId: invoice.id,
          request: snapshot as unknown as Record<string, unknown>,
          createdAt: now,
          updatedAt: now,
        });
        await tx.update(accounts).set({ status: 'pending_payment', updatedAt: now }).where(eq(accounts.id, accountId));
        await appendEvents(tx, now, [
          { type: 'invoice.created', accountId, payload: { accountId, invoiceId: invoice.id, number: invoice.number, total: invoice.total, status: 'open' } },
          {
            type: 'account.upgrade_pending_payment',
            accountId,
            payload: { accountId, paymentId, invoiceId: invoice.id, planId: ctx.plan.id, methodType: method.type, dueAt: invoice.dueAt.toISOString() },
          },
        ]);
        const result = await readResult(tx, paymentId, 'pending_payment');
        await recordIdempotent(tx, idempotency, 201, result);
        return { kind: 'done' as const, result };
      }

      const payment = await paymentsRepo.insertPayment(tx, {
        id: paymentId,
        accountId,
        purpose: 'upgrade',
        status: 'processing',
        amount: evaluation.priced.total,
        currency: evaluation.priced.currency,
        methodType: method.type,
        paymentMethodId: paymentMethod.id,
        request: snapshot as unknown as Record<string, unknown>,
        createdAt: now,
        updatedAt: now,
      });
      return { kind: 'charge' as const, payment };
    });
    if (prepared.kind === 'done') return prepared.result;

    // The first charge goes by the saved method's reference too: one way to charge a method.
    const payment = prepared.payment;
    const result = await chargeWithDeadline(
      provider,
      { idempotencyKey: payment.id, amount: payment.amount, currency: payment.currency, method: chargeMethodOf(stored), description: `Upgrade of ${accountId}` },
      logger,
    );
    return settle(payment.id, result, idempotency);
  }

  /** Everything that may refuse an upgrade: unlocked before the gateway is asked anything, and again under the account's lock. */
  async function admit(tx: Db, accountId: string, request: UpgradeRequest, lock: boolean) {
    const ctx = await loadContext(tx, accountId, request.planId, request.billingCycle, lock);
    const now = await nowForAccount(tx, ctx.account, clock);
    const evaluation = evaluate(ctx, choiceOf(request, request.paymentMethod.type), now);
    if (evaluation.blockers.length) throw refusalError(evaluation.blockers[0]!);
    const pending = await paymentsRepo.findOpenUpgradePayment(tx, accountId);
    if (pending) throw new AppError('upgrade_in_progress', `Payment ${pending.id} is already in progress`, { paymentId: pending.id });
    return { ctx, now, evaluation };
  }

  /** Applies a provider's answer to a payment; safe to call twice with the same answer. */
  async function settle(paymentId: string, result: ChargeResult, idempotency: IdempotencyHandle | null): Promise<UpgradeResult> {
    const outcome = await db.transaction(async (tx) => {
      const current = await paymentsRepo.findPayment(tx, paymentId);
      if (!current) throw new AppError('payment_not_found', `No payment ${paymentId}`);
      // Account first, then payment: the same order as the upgrade's first transaction.
      const account = await accountsRepo.findAccount(tx, current.accountId, { forUpdate: true });
      const now = await nowForAccount(tx, account!, clock);
      const payment = (await paymentsRepo.findPayment(tx, paymentId, { forUpdate: true }))!;
      if (payment.status === 'succeeded') return { kind: 'result' as const, result: await readResult(tx, paymentId, 'active') };
      if (payment.status === 'failed') return { kind: 'declined' as const, payment };

      if (result.status === 'succeeded') {
        const activated = await activate(tx, payment, account!, now, result.reference);
        await recordIdempotent(tx, idempotency, 201, activated);
        return { kind: 'result' as const, result: activated };
      }
      if (result.status === 'failed') {
        const failure = { failureCode: result.code, failureMessage: result.message, providerReference: result.reference };
        const failed = await paymentsRepo.updatePayment(tx, paymentId, { status: 'failed', ...failure, updatedAt: now });
        await appendEvents(tx, now, [
          {
            type: 'payment.failed',
            accountId: payment.accountId,
            payload: { accountId: payment.accountId, paymentId, purpose: 'upgrade', failureCode: failure.failureCode, amount: payment.amount, currency: payment.currency },
          },
        ]);
        return { kind: 'declined' as const, payment: failed };
      }
      // Unknown: wait for reconciliation.
      if (payment.status !== 'unknown') await paymentsRepo.updatePayment(tx, paymentId, { status: 'unknown', updatedAt: now });
      return { kind: 'result' as const, result: await readResult(tx, paymentId, 'payment_unknown') };
    });
    if (outcome.kind === 'declined') {
      const p = outcome.payment;
      throw new AppError('payment_declined', p.failureMessage ?? 'The payment was declined', {
        declineCode: p.failureCode,
        paymentId: p.id,
      });
    }
    return outcome.result;
  }

  async function answerFor(payment: paymentsRepo.PaymentRow, idempotency: IdempotencyHandle): Promise<UpgradeResult> {
    if (payment.status === 'unknown' || payment.status === 'processing') return reconcile(payment, idempotency);
    if (payment.status === 'failed') return settle(payment.id, { status: 'unknown' }, idempotency); // throws payment_declined
    return db.transaction(async (tx) => {
      const result = await readResult(tx, payment.id, payment.status === 'succeeded' ? 'active' : 'pending_payment');
      await recordIdempotent(tx, idempotency, 201, result);
      return result;
    });
  }

  /** Asks the provider what became of a payment and settles it; a decline throws payment_declined. */
  async function reconcile(payment: paymentsRepo.PaymentRow, idempotency: IdempotencyHandle | null): Promise<UpgradeResult> {
    const method = (await paymentsRepo.findPaymentMethod(db, payment.paymentMethodId))!;
    return settle(payment.id, await resolveUnknownCharge(provider, payment, method, logger), idempotency);
  }

  /** The worker's sweep: settle payments left unknown or stuck in processing. */
  async function reconcileStalePayments(limit = 50): Promise<{ checked: number; succeeded: number; failed: number }> {
    const stale = await paymentsRepo.listUnresolvedPayments(db, 'upgrade', 30_000, limit);
    const counts = { checked: stale.length, succeeded: 0, failed: 0 };
    for (const payment of stale) {
      try {
        const settled = await reconcile(payment, null);
        if (settled.payment.status === 'succeeded') counts.succeeded++;
      } catch (err) {
        if (err instanceof AppError && err.code === 'payment_declined') counts.failed++;
        // One payment that cannot settle must not stop the others.
        else logger.error({ err, paymentId: payment.id }, 'could not reconcile payment');
      }
    }
    return counts;
  }

  /** Ops record a wire transfer or cheque: the open invoice is paid and the upgrade completes. */
  async function confirmOfflinePayment(paymentId: string, input: { reference: string; amount?: number }): Promise<UpgradeResult> {
    return db.transaction(async (tx) => {
      const found = await paymentsRepo.findPayment(tx, paymentId);
      if (!found) throw new AppError('payment_not_found', `No payment ${paymentId}`);
      const account = await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true });
      const now = await nowForAccount(tx, account!, clock);
      const payment = (await paymentsRepo.findPayment(tx, paymentId, { forUpdate: true }))!;
      if (payment.status === 'succeeded' && payment.offlineReference !== null) {
        if (payment.offlineReference !== input.reference) {
          throw new AppError('payment_not_confirmable', `Payment ${paymentId} was already confirmed with reference ${payment.offlineReference}`);
        }
        return readResult(tx, paymentId, 'active');
      }
      if (payment.status !== 'awaiting_confirmation') {
        throw new AppError('payment_not_confirmable', `Payment ${paymentId} is ${payment.status}`);
      }
      if (input.amount !== undefined && input.amount !== payment.amount) {
        throw new AppError('payment_amount_mismatch', `The amount due is ${payment.amount}; ${input.amount} was confirmed`, { amountDue: payment.amount });
      }
      if (payment.purpose === 'renewal') return { renewal: true as const };
      await paymentsRepo.updatePayment(tx, paymentId, { offlineReference: input.reference });
      return activate(tx, { ...payment, offlineReference: input.reference }, account!, now, null);
    }).then(async (result) => {
      if (!('renewal' in result)) return result;
      // The renewal may have been written off between the check and now: then it is not confirmable.
      if (!(await deps.confirmRenewalPayment(paymentId, input.reference))) {
        throw new AppError('payment_not_confirmable', `Payment ${paymentId} is no longer awaiting confirmation`);
      }
      return readResult(db, paymentId, 'active');
    });
  }

  /**
   * Everything the successful payment buys, in the caller's transaction: the subscription
   * and its first period, the paid invoice, the credits, the auto-recharge settings, the
   * account on its plan, and the events (the confirmation email rides on account.upgraded).
   * Nothing else of the account changes: id, keys, whitelist, KYC and settings carry over.
   */
  async function activate(tx: Db, payment: paymentsRepo.PaymentRow, account: accountsRepo.AccountRow, now: Date, providerReference: string | null) {
    const snapshot = snapshotOf(payment);
    const [cycle] = await tx.select().from(billingCycles).where(eq(billingCycles.code, snapshot.billingCycle));
    const openInvoice = payment.invoiceId ? await billingRepo.findInvoice(tx, payment.invoiceId) : undefined;
    // The upgrade happens when the money arrives: a wire confirmed days later starts its period then.
    const period = periodAt(now, cycle!.months, 0);

    const subscription = await subscriptionsRepo.insertSubscription(tx, {
      id: newId('sub', now),
      accountId: account.id,
      planId: snapshot.planId,
      billingCycle: snapshot.billingCycle,
      status: 'active',
      whatsappAddon: snapshot.whatsappAddon,
      anchorAt: period.start,
      currentPeriodStart: period.start,
      currentPeriodEnd: period.end,
      monthsElapsed: cycle!.months,
      paymentMethodId: payment.paymentMethodId,
      createdAt: now,
      updatedAt: now,
    });
    const invoice = openInvoice
      ? await billingRepo.markInvoicePaid(tx, openInvoice.id, now, subscription.id, period)
      : await issueUpgradeInvoice(tx, { accountId: account.id, snapshot, period, status: 'paid', now, dueAt: now, subscriptionId: subscription.id });

    if (snapshot.initialCredits > 0) {
      await creditsRepo.applyEntry(tx, {
        accountId: account.id,
        currency: account.currency,
        amount: snapshot.initialCredits,
        kind: 'upgrade',
        sourceKey: `payment:${payment.id}`,
        description: `Initial credits, invoice ${invoice.number}`,
        at: now,
      });
    }
    if (snapshot.autoRecharge) {
      await creditsRepo.upsertAutoRecharge(tx, {
        accountId: account.id,
        enabled: snapshot.autoRecharge.enabled,
        threshold: snapshot.autoRecharge.threshold,
        amount: snapshot.autoRecharge.amount,
        paymentMethodId: payment.paymentMethodId,
        updatedAt: now,
      });
    }
    await tx.update(accounts).set({ status: 'active', planId: snapshot.planId, updatedAt: now }).where(eq(accounts.id, account.id));
    await paymentsRepo.updatePayment(tx, payment.id, { status: 'succeeded', invoiceId: invoice.id, providerReference, updatedAt: now });

    const ids = { accountId: account.id, subscriptionId: subscription.id, invoiceId: invoice.id, paymentId: payment.id };
    await appendEvents(tx, now, [
      ...(openInvoice ? [] : [{ type: 'invoice.created' as const, accountId: account.id, payload: { ...ids, number: invoice.number, total: invoice.total, status: 'paid' } }]),
      { type: 'payment.succeeded', accountId: account.id, payload: { ...ids, amount: payment.amount, currency: payment.currency, methodType: payment.methodType } },
      { type: 'invoice.paid', accountId: account.id, payload: { ...ids, number: invoice.number, total: invoice.total } },
      { type: 'account.upgraded', accountId: account.id, payload: { ...ids, planId: snapshot.planId, billingCycle: snapshot.billingCycle, from: account.status } },
    ]);
    return readResult(tx, payment.id, 'active');
  }

  const issueUpgradeInvoice = (
    tx: Db,
    input: { accountId: string; snapshot: UpgradeSnapshot; period: { start: Date; end: Date }; status: 'open' | 'paid'; now: Date; dueAt: Date; subscriptionId?: string },
  ) =>
    issueInvoice(tx, {
      accountId: input.accountId,
      subscriptionId: input.subscriptionId ?? null,
      kind: 'upgrade',
      status: input.status,
      priced: input.snapshot.priced,
      planId: input.snapshot.planId,
      billingCycle: input.snapshot.billingCycle,
      period: input.period,
      now: input.now,
      dueAt: input.dueAt,
    });

  async function readResult(tx: Db, paymentId: string, status: UpgradeResult['status']): Promise<UpgradeResult> {
    const payment = (await paymentsRepo.findPayment(tx, paymentId))!;
    const account = (await accountsRepo.findAccount(tx, payment.accountId))!;
    const invoice = payment.invoiceId ? await billingRepo.findInvoice(tx, payment.invoiceId) : undefined;
    const subscription = status === 'active' ? await subscriptionsRepo.findLiveSubscription(tx, account.id) : undefined;
    const plan = subscription ? await catalogRepo.findPlan(tx, subscription.planId) : undefined;
    const method = subscription ? await paymentsRepo.findPaymentMethod(tx, subscription.paymentMethodId) : undefined;
    return {
      status,
      account: toAccountDto(account),
      subscription: subscription && plan ? toSubscriptionDto(subscription, plan, method) : null,
      invoice: invoice ? toInvoiceDto(invoice, await billingRepo.linesOf(tx, invoice.id)) : null,
      payment: toPaymentDto(payment),
    };
  }

  async function getPayment(paymentId: string, viewer: { accountId: string | null }) {
    const payment = await paymentsRepo.findPayment(db, paymentId);
    if (!payment || (viewer.accountId && viewer.accountId !== payment.accountId)) throw new AppError('payment_not_found', `No payment ${paymentId}`);
    return toPaymentDto(payment);
  }

  return { quote, upgrade, confirmOfflinePayment, reconcileStalePayments, getPayment };
}

export type UpgradeService = ReturnType<typeof createUpgradeService>;

function choiceOf(request: QuoteRequest | UpgradeRequest, paymentMethodType: PaymentMethodInput['type'] | undefined) {
  return {
    whatsappAddon: request.addOns.whatsapp,
    initialCredits: request.initialCredits,
    paymentMethodType,
    autoRecharge: request.autoRecharge,
  };
}

const refusalError = (refusal: Refusal) => new AppError(refusal.code, refusal.detail, refusal.extra);

const snapshotOf = (payment: paymentsRepo.PaymentRow) => payment.request as unknown as UpgradeSnapshot;

/** Writes the idempotent response in the same transaction as the change it reports. */
async function recordIdempotent(tx: Db, handle: IdempotencyHandle | null, status: number, body: unknown): Promise<void> {
  if (!handle) return;
  await completeIdempotency(tx, handle, status, JSON.parse(JSON.stringify(body)));
  handle.completed = true;
}
