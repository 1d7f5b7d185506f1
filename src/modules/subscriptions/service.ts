import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { billingCycles, subscriptions } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents } from '../events/repo.js';
import { unattendedVerdict, type MandateRules } from '../payments/mandate.js';
import { allowedPaymentMethods } from '../payments/methods.js';
import type { Taxation } from '../billing/tax.js';
import { priceNextPeriod } from '../renewals/domain.js';
import * as paymentsRepo from '../payments/repo.js';
import { countLiveExophones } from '../exophones/service.js';
import { nowForAccount } from '../test-clocks/time.js';
import { downgradeConflicts, entitlementChanges } from './domain.js';
import { toSubscriptionDto } from './dto.js';
import type { SubscriptionRow } from './repo.js';

type Viewer = { accountId: string | null };
type BillingCycle = SubscriptionRow['billingCycle'];

/** Changes that take effect at the next period: plan, billing cycle, cancellation. */
export function createSubscriptionsService(deps: { db: Db; clock: Clock; taxation: Taxation; mandate: MandateRules }) {
  const { db, clock } = deps;

  /**
   * Will the next renewal, as now scheduled, need the customer (above the default method's
   * e-mandate, the mandate ended by then, no method)? So the console can say so before they buy.
   */
  async function renewalNeedsCustomerAction(tx: Db, sub: SubscriptionRow, account: accountsRepo.AccountRow): Promise<boolean> {
    const planId = sub.scheduledPlanId ?? sub.planId;
    const [cycle] = await tx.select().from(billingCycles).where(eq(billingCycles.code, sub.scheduledBillingCycle ?? sub.billingCycle));
    const { priced } = priceNextPeriod(sub, account, { plan: await catalogRepo.findPlan(tx, planId), prices: await catalogRepo.pricesOf(tx, [planId]), cycle }, deps.taxation);
    const method = await paymentsRepo.findPaymentMethod(tx, sub.paymentMethodId);
    const verdict = unattendedVerdict(deps.mandate, method, account.currency, priced.total, sub.currentPeriodEnd);
    return !verdict.ok && verdict.reason !== 'not_unattended';
  }

  async function dto(tx: Db, row: SubscriptionRow) {
    const plan = (await catalogRepo.findPlan(tx, row.planId))!;
    return toSubscriptionDto(row, plan, await paymentsRepo.findPaymentMethod(tx, row.paymentMethodId));
  }

  /** Locks the account, then the subscription; another account's subscription is a 404. */
  async function lockForChange(tx: Db, id: string, viewer: Viewer) {
    const [found] = await tx.select().from(subscriptions).where(eq(subscriptions.id, id));
    if (!found || (viewer.accountId && viewer.accountId !== found.accountId)) throw new AppError('subscription_not_found', `No subscription ${id}`);
    const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
    const [sub] = await tx.select().from(subscriptions).where(eq(subscriptions.id, id)).for('update');
    const now = await nowForAccount(tx, account, clock);
    // A change now would land in a period that has already started: wait for the renewal.
    if (sub!.status !== 'cancelled' && now >= sub!.currentPeriodEnd) {
      throw new AppError('renewal_pending', `The period ended at ${sub!.currentPeriodEnd.toISOString()}; its renewal is being processed`);
    }
    return { sub: sub!, account, now };
  }

  /** The brief's payment rules hold for what the subscription will be: wire and cheque only for Enterprise annual. */
  async function assertMethodAllowed(tx: Db, sub: SubscriptionRow, country: string, tier: string, cycle: BillingCycle) {
    const method = await paymentsRepo.findPaymentMethod(tx, sub.paymentMethodId);
    const allowed = allowedPaymentMethods(country, tier, cycle);
    if (method && !allowed.includes(method.type)) {
      throw new AppError('payment_method_not_allowed', `The subscription pays by ${method.type}, which ${tier} on ${cycle} billing does not allow`, {
        allowedPaymentMethods: allowed,
      });
    }
  }

  function assertActive(sub: SubscriptionRow) {
    if (sub.status !== 'active') throw new AppError('subscription_not_active', `The subscription is ${sub.status}`);
  }

  async function update(tx: Db, id: string, set: Partial<typeof subscriptions.$inferInsert>) {
    const [row] = await tx.update(subscriptions).set(set).where(eq(subscriptions.id, id)).returning();
    return row!;
  }

  async function get(id: string, viewer: Viewer) {
    const [row] = await db.select().from(subscriptions).where(eq(subscriptions.id, id));
    if (!row || (viewer.accountId && viewer.accountId !== row.accountId)) throw new AppError('subscription_not_found', `No subscription ${id}`);
    return dto(db, row);
  }

  /** Up or down, from the next period; a new request replaces the scheduled one. */
  async function schedulePlanChange(id: string, viewer: Viewer, planId: string) {
    return db.transaction(async (tx) => {
      const { sub, account, now } = await lockForChange(tx, id, viewer);
      assertActive(sub);
      const plan = await catalogRepo.findPlan(tx, planId);
      if (!plan || plan.kind === 'trial' || (plan.kind === 'custom' && plan.offeredToAccountId !== account.id)) {
        throw new AppError('plan_not_found', `No plan ${planId}`);
      }
      if (plan.supersededAt) throw new AppError('plan_not_offered', `${planId} was replaced by a newer version`);
      if (plan.id === sub.planId) throw new AppError('plan_unchanged', `The subscription is already on ${plan.name}`);
      const prices = await catalogRepo.pricesOf(tx, [plan.id]);
      if (!prices.some((p) => p.currency === account.currency)) throw new AppError('currency_not_priced', `${plan.id} has no ${account.currency} price`);
      await assertMethodAllowed(tx, sub, account.country, plan.tier, sub.scheduledBillingCycle ?? sub.billingCycle);
      const current = (await catalogRepo.findPlan(tx, sub.planId))!;
      const updated = await update(tx, id, { scheduledPlanId: plan.id, updatedAt: now });
      const changes = entitlementChanges(current.entitlements, plan.entitlements);
      const conflicts = downgradeConflicts(current.entitlements, plan.entitlements, { exophonesInUse: await countLiveExophones(tx, account.id) });
      await appendEvents(tx, now, [
        {
          type: 'subscription.plan_change_scheduled',
          accountId: account.id,
          payload: { accountId: account.id, subscriptionId: id, from: sub.planId, to: plan.id, effectiveAt: sub.currentPeriodEnd.toISOString(), conflicts },
        },
      ]);
      return {
        subscription: await dto(tx, updated),
        effectiveAt: sub.currentPeriodEnd,
        entitlementChanges: changes,
        conflicts,
        renewalNeedsCustomerAction: await renewalNeedsCustomerAction(tx, updated, account),
      };
    });
  }

  async function withdrawPlanChange(id: string, viewer: Viewer) {
    return db.transaction(async (tx) => {
      const { sub, account, now } = await lockForChange(tx, id, viewer);
      if (!sub.scheduledPlanId) throw new AppError('no_scheduled_change', 'No plan change is scheduled');
      const updated = await update(tx, id, { scheduledPlanId: null, updatedAt: now });
      await appendEvents(tx, now, [
        { type: 'subscription.plan_change_withdrawn', accountId: account.id, payload: { accountId: account.id, subscriptionId: id, planId: sub.scheduledPlanId } },
      ]);
      return dto(tx, updated);
    });
  }

  /** The FAQ's "contact support": ops switch the cycle from the next renewal. */
  async function scheduleBillingCycle(id: string, billingCycle: BillingCycle) {
    return db.transaction(async (tx) => {
      const { sub, account, now } = await lockForChange(tx, id, { accountId: null });
      assertActive(sub);
      if (billingCycle === (sub.scheduledBillingCycle ?? sub.billingCycle)) {
        throw new AppError('billing_cycle_unchanged', `The subscription already renews ${billingCycle}`);
      }
      const targetPlan = (await catalogRepo.findPlan(tx, sub.scheduledPlanId ?? sub.planId))!;
      await assertMethodAllowed(tx, sub, account.country, targetPlan.tier, billingCycle);
      const updated = await update(tx, id, { scheduledBillingCycle: billingCycle === sub.billingCycle ? null : billingCycle, updatedAt: now });
      await appendEvents(tx, now, [
        {
          type: 'subscription.billing_cycle_change_scheduled',
          accountId: account.id,
          payload: { accountId: account.id, subscriptionId: id, from: sub.billingCycle, to: billingCycle, effectiveAt: sub.currentPeriodEnd.toISOString() },
        },
      ]);
      return { ...(await dto(tx, updated)), renewalNeedsCustomerAction: await renewalNeedsCustomerAction(tx, updated, account) };
    });
  }

  /** Active to the period end, then limited; asking twice changes nothing. */
  async function cancel(id: string, viewer: Viewer) {
    return db.transaction(async (tx) => {
      const { sub, account, now } = await lockForChange(tx, id, viewer);
      assertActive(sub);
      if (sub.cancelAtPeriodEnd) return dto(tx, sub);
      const updated = await update(tx, id, { cancelAtPeriodEnd: true, updatedAt: now });
      await appendEvents(tx, now, [
        {
          type: 'subscription.cancellation_scheduled',
          accountId: account.id,
          payload: { accountId: account.id, subscriptionId: id, endsAt: sub.currentPeriodEnd.toISOString() },
        },
      ]);
      return dto(tx, updated);
    });
  }

  async function resume(id: string, viewer: Viewer) {
    return db.transaction(async (tx) => {
      const { sub, account, now } = await lockForChange(tx, id, viewer);
      if (sub.status !== 'active' || !sub.cancelAtPeriodEnd) throw new AppError('subscription_not_cancelling', 'The subscription is not scheduled to cancel');
      const updated = await update(tx, id, { cancelAtPeriodEnd: false, updatedAt: now });
      await appendEvents(tx, now, [{ type: 'subscription.resumed', accountId: account.id, payload: { accountId: account.id, subscriptionId: id } }]);
      return dto(tx, updated);
    });
  }

  return { get, schedulePlanChange, withdrawPlanChange, scheduleBillingCycle, cancel, resume };
}

export type SubscriptionsService = ReturnType<typeof createSubscriptionsService>;
