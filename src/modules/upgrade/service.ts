import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, billingCycles } from '../../db/schema/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import * as accountsRepo from '../accounts/repo.js';
import type { PricedInvoice } from '../billing/domain.js';
import { taxRegime } from '../billing/tax.js';
import { issueInvoice } from '../billing/issue.js';
import * as billingRepo from '../billing/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import * as creditsRepo from '../credits/repo.js';
import { appendEvents } from '../events/repo.js';
import { complete as completeIdempotency, type IdempotencyHandle } from '../idempotency/repo.js';
import { isOffline } from '../payments/methods.js';
import { unattendedVerdict, type UnattendedVerdict } from '../payments/mandate.js';
import { declinedError, type Effects, type PurposeDeps } from '../payments/service.js';
import type { ChargeResult, PaymentProvider } from '../payments/provider.js';
import * as paymentsRepo from '../payments/repo.js';
import { saveWithProvider } from '../payments/saving.js';
import type { PaymentMethodInput } from '../payments/schemas.js';
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

export interface UpgradeDeps extends PurposeDeps {
  /** Saves the method an upgrade is paid with. */
  provider: PaymentProvider;
  invoiceDueDays: number;
  /** Told once an upgrade awaiting money is committed (`pending_payment`); a paid one is told by the payments service. */
  accountChanged: (accountId: string) => void;
}

export function createUpgradeService(deps: UpgradeDeps) {
  const { db, clock, provider, logger, payments } = deps;
  // What an upgrade payment's success means: the account on its plan (see activate).
  payments.handle('upgrade', {
    describe: (payment) => `Upgrade of ${payment.accountId}`,
    unattended: false,
    succeeded: ({ tx, payment, account, now }) => activate(tx, payment, account, now),
    failed: async () => ({}),
  });

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
    return { account, plan, price, cycle, tax: taxRegime(deps.taxation, account) };
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
      renewalTotal: evaluation.renewalTotal,
      // By card unless another method was named: an Indian card or UPI above its e-mandate cannot renew unattended.
      renewalNeedsCustomerAction: needsCustomer(
        unattendedVerdict(deps.mandate, { type: request.paymentMethodType ?? 'card', mandateMaxAmount: null, mandateValidUntil: null }, ctx.account.currency, evaluation.renewalTotal, evaluation.period.end),
      ),
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
    if (mine) return reconcile(mine, idempotency);

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
        await payments.open(tx, {
          id: paymentId,
          accountId,
          purpose: 'upgrade',
          offline: true,
          amount: evaluation.priced.total,
          currency: evaluation.priced.currency,
          method: paymentMethod,
          invoiceId: invoice.id,
          request: snapshot as unknown as Record<string, unknown>,
          now,
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
        const result = await payments.resultIn(tx, paymentId);
        await recordIdempotent(tx, idempotency, 201, result);
        return { kind: 'done' as const, result };
      }

      const payment = await payments.open(tx, {
        id: paymentId,
        accountId,
        purpose: 'upgrade',
        amount: evaluation.priced.total,
        currency: evaluation.priced.currency,
        method: paymentMethod,
        request: snapshot as unknown as Record<string, unknown>,
        now,
      });
      return { kind: 'charge' as const, payment, paymentMethod };
    });
    if (prepared.kind === 'done') {
      deps.accountChanged(accountId);
      return prepared.result;
    }

    // The first charge goes by the saved method's reference too: one way to charge a method.
    return settle(prepared.payment.id, await payments.charge(prepared.payment, prepared.paymentMethod), idempotency);
  }

  /** The upgrade's answer, read in the settling transaction; a success is recorded for the Idempotency-Key with it. */
  async function answer(tx: Db, settled: paymentsRepo.PaymentRow, idempotency: IdempotencyHandle | null): Promise<UpgradeResult | null> {
    if (settled.status === 'failed') return null;
    const result = await payments.resultIn(tx, settled.id);
    if (settled.status === 'succeeded') await recordIdempotent(tx, idempotency, 201, result);
    return result;
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

  /**
   * Settles an upgrade payment through the payments service and answers for it: the result
   * is recorded for the Idempotency-Key in the settling transaction; a decline throws.
   */
  async function settle(paymentId: string, result: ChargeResult, idempotency: IdempotencyHandle | null): Promise<UpgradeResult> {
    const { payment, value } = await payments.settle(paymentId, result, { within: (tx, settled) => answer(tx, settled, idempotency) });
    if (payment.status === 'failed') throw declinedError(payment);
    return value!;
  }

  /** An upgrade payment met again: reconciled or read back, and answered (a decline throws payment_declined). */
  async function reconcile(payment: paymentsRepo.PaymentRow, idempotency: IdempotencyHandle | null): Promise<UpgradeResult> {
    const { payment: after, value } = await payments.reconcile(payment, { within: (tx, settled) => answer(tx, settled, idempotency) });
    if (after.status === 'failed') throw declinedError(after);
    return value!;
  }

  /**
   * Everything the successful payment buys, in the settling transaction: the subscription
   * and its first period, the paid invoice, the credits, the auto-recharge settings, the
   * account on its plan, and the events (the confirmation email rides on account.upgraded).
   * Nothing else of the account changes: id, keys, whitelist, KYC and settings carry over.
   */
  async function activate(tx: Db, payment: paymentsRepo.PaymentRow, account: accountsRepo.AccountRow, now: Date): Promise<Effects> {
    const snapshot = snapshotOf(payment);
    const [cycle] = await tx.select().from(billingCycles).where(eq(billingCycles.code, snapshot.billingCycle));
    const openInvoice = payment.invoiceId ? await billingRepo.findInvoice(tx, payment.invoiceId) : undefined;
    // The upgrade happens when the money arrives: a wire confirmed days later starts its period then.
    const period = periodAt(now, cycle!.months, 0);

    // The method that paid is the account's default: the subscription's renewals charge it.
    await paymentsRepo.setDefaultMethod(tx, account.id, payment.paymentMethodId);
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

    const ids = { accountId: account.id, subscriptionId: subscription.id, invoiceId: invoice.id, paymentId: payment.id };
    return {
      invoiceId: invoice.id,
      fields: { subscriptionId: subscription.id },
      before: openInvoice ? [] : [{ type: 'invoice.created', accountId: account.id, payload: { ...ids, number: invoice.number, total: invoice.total, status: 'paid' } }],
      after: [
        { type: 'invoice.paid', accountId: account.id, payload: { ...ids, number: invoice.number, total: invoice.total } },
        { type: 'account.upgraded', accountId: account.id, payload: { ...ids, planId: snapshot.planId, billingCycle: snapshot.billingCycle, from: account.status } },
      ],
    };
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

  return { quote, upgrade };
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

const needsCustomer = (verdict: UnattendedVerdict): boolean => !verdict.ok && verdict.reason !== 'not_unattended';

const refusalError = (refusal: Refusal) => new AppError(refusal.code, refusal.detail, refusal.extra);

const snapshotOf = (payment: paymentsRepo.PaymentRow) => payment.request as unknown as UpgradeSnapshot;

/** Writes the idempotent response in the same transaction as the change it reports. */
async function recordIdempotent(tx: Db, handle: IdempotencyHandle | null, status: number, body: unknown): Promise<void> {
  if (!handle) return;
  await completeIdempotency(tx, handle, status, JSON.parse(JSON.stringify(body)));
  handle.completed = true;
}
