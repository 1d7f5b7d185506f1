import { and, asc, eq, lte, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, invoices, paymentMethods, payments, subscriptions } from '../../db/schema/index.js';

/**
 * SQL for "this due subscription may take the batch path", as far as the database can tell
 * (batchRoute in domain.ts has the last word): real time, no cancellation or scheduled
 * change, a card or UPI method, and for Indian e-mandates a notice whose window has passed
 * (or no notice window at all). Used as is to claim batches, and negated by the sweep that
 * queues single renewals, so each due subscription has one path.
 */
export function batchable(now: Date, noticeHours: number): SQL {
  const at = now.toISOString();
  return sql`coalesce((
    ${accounts.testClockId} is null
    and not ${subscriptions.cancelAtPeriodEnd}
    and ${subscriptions.scheduledPlanId} is null
    and ${subscriptions.scheduledBillingCycle} is null
    and ${paymentMethods.type} in ('card', 'upi')
    and (${accounts.currency} <> 'INR' or ${noticeHours} = 0
      or (${subscriptions.renewalNoticeFor} = ${subscriptions.currentPeriodEnd}
        and ${subscriptions.renewalNoticeAt} <= ${at}::timestamptz - make_interval(hours => ${noticeHours})))
  ), false)`;
}

/** `column = any(ids)`: one array parameter however many ids (inArray binds one each). */
export const anyOf = (column: AnyColumn, ids: string[]): SQL => sql`${column} = any(${sql.param(ids)}::text[])`;

const lockedColumns = {
  sub: subscriptions,
  account: accounts,
  methodType: paymentMethods.type,
  methodReference: paymentMethods.reference,
  mandateMaxAmount: paymentMethods.mandateMaxAmount,
  mandateValidUntil: paymentMethods.mandateValidUntil,
};
export interface LockedRenewal {
  sub: typeof subscriptions.$inferSelect;
  account: typeof accounts.$inferSelect;
  methodType: (typeof paymentMethods.$inferSelect)['type'] | null;
  methodReference: string | null;
  mandateMaxAmount: number | null;
  mandateValidUntil: Date | null;
}

/**
 * Due, batchable subscriptions not locked by anyone else, locked with their accounts. SKIP
 * LOCKED lets many batches claim side by side without waiting or deadlocking; a claimed row
 * stays locked until its batch commits, by when it is no longer due.
 */
export async function claimDue(tx: Db, now: Date, noticeHours: number, limit: number, excluding: string[]): Promise<LockedRenewal[]> {
  return tx
    .select(lockedColumns)
    .from(subscriptions)
    .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
    .innerJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
    .where(
      and(
        eq(subscriptions.status, 'active'),
        lte(subscriptions.currentPeriodEnd, now),
        batchable(now, noticeHours),
        excluding.length ? sql`${subscriptions.id} <> all(${sql.param(excluding)}::text[])` : undefined,
      ),
    )
    .orderBy(asc(subscriptions.currentPeriodEnd))
    .limit(limit)
    .for('update', { of: [subscriptions, accounts], skipLocked: true });
}

/** How many batchable renewals are due, up to `limit`: how many batches to start. */
export async function countDue(db: Db, now: Date, noticeHours: number, limit: number): Promise<number> {
  const due = db
    .select({ one: sql`1` })
    .from(subscriptions)
    .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
    .innerJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
    .where(and(eq(subscriptions.status, 'active'), lte(subscriptions.currentPeriodEnd, now), batchable(now, noticeHours)))
    .limit(limit)
    .as('due');
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(due);
  return row?.n ?? 0;
}

/**
 * Named subscriptions locked with their accounts, in account order: two batches over the
 * same accounts queue behind each other instead of deadlocking. (The single renewal locks
 * one account, then its subscription: the same order.)
 */
export async function lockNamed(tx: Db, subscriptionIds: string[]): Promise<LockedRenewal[]> {
  if (subscriptionIds.length === 0) return [];
  return tx
    .select(lockedColumns)
    .from(subscriptions)
    .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
    .leftJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
    .where(anyOf(subscriptions.id, subscriptionIds))
    .orderBy(asc(accounts.id))
    .for('update', { of: [accounts, subscriptions] });
}

export interface PeriodUpdate {
  id: string;
  planId: string;
  billingCycle: string;
  whatsappAddon: boolean;
  start: Date;
  end: Date;
  monthsElapsed: number;
  /** The period end a pre-debit notice sent with this renewal announced; null: none sent now. */
  noticeFor: Date | null;
}

const iso = (dates: Array<Date | null>) => sql.param(dates.map((d) => d?.toISOString() ?? null));

/** Starts the next period of many subscriptions in one statement (the single renewal's update, row by row). */
export async function startNextPeriods(tx: Db, rows: PeriodUpdate[], now: Date): Promise<void> {
  if (rows.length === 0) return;
  await tx.execute(sql`
    update subscriptions s set
      plan_id = v.plan_id, billing_cycle = v.billing_cycle, whatsapp_addon = v.whatsapp_addon,
      current_period_start = v.period_start, current_period_end = v.period_end, months_elapsed = v.months_elapsed,
      scheduled_plan_id = null, scheduled_billing_cycle = null,
      renewal_notice_for = case when v.notice_for is null then s.renewal_notice_for else v.notice_for end,
      renewal_notice_at = case when v.notice_for is null then s.renewal_notice_at else ${now.toISOString()}::timestamptz end,
      updated_at = ${now.toISOString()}::timestamptz
    from unnest(
      ${sql.param(rows.map((r) => r.id))}::text[], ${sql.param(rows.map((r) => r.planId))}::text[],
      ${sql.param(rows.map((r) => r.billingCycle))}::text[], ${sql.param(rows.map((r) => r.whatsappAddon))}::boolean[],
      ${iso(rows.map((r) => r.start))}::timestamptz[], ${iso(rows.map((r) => r.end))}::timestamptz[],
      ${sql.param(rows.map((r) => r.monthsElapsed))}::int[], ${iso(rows.map((r) => r.noticeFor))}::timestamptz[]
    ) as v(id, plan_id, billing_cycle, whatsapp_addon, period_start, period_end, months_elapsed, notice_for)
    where s.id = v.id`);
}

/** The accounts' current plan, as the single renewal sets it. */
export async function setAccountPlans(tx: Db, rows: Array<{ accountId: string; planId: string }>, now: Date): Promise<void> {
  if (rows.length === 0) return;
  await tx.execute(sql`
    update accounts a set plan_id = v.plan_id, updated_at = ${now.toISOString()}::timestamptz
    from unnest(${sql.param(rows.map((r) => r.accountId))}::text[], ${sql.param(rows.map((r) => r.planId))}::text[]) as v(id, plan_id)
    where a.id = v.id`);
}

/**
 * What a wave's settle needs to know of renewal payments (their accounts already locked):
 * the invoice each pays, and whether its subscription is still simply active in real time.
 */
export async function stateOfPayments(tx: Db, paymentIds: string[]) {
  if (paymentIds.length === 0) return [];
  return tx
    .select({
      paymentId: payments.id,
      accountId: payments.accountId,
      invoiceId: invoices.id,
      invoiceStatus: invoices.status,
      number: invoices.number,
      total: invoices.total,
      currency: invoices.currency,
      periodStart: invoices.periodStart,
      periodEnd: invoices.periodEnd,
      subscriptionId: subscriptions.id,
      subscriptionStatus: subscriptions.status,
      testClockId: accounts.testClockId,
    })
    .from(payments)
    .innerJoin(accounts, eq(accounts.id, payments.accountId))
    .innerJoin(invoices, eq(invoices.id, payments.invoiceId))
    .innerJoin(subscriptions, eq(subscriptions.id, invoices.subscriptionId))
    .where(anyOf(payments.id, paymentIds));
}
