import { and, asc, eq, inArray, isNotNull, lte, not, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, invoices, paymentMethods, payments, subscriptions, testClocks } from '../../db/schema/index.js';

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

/** The time each account lives on: its test clock's, or the real one (the query joins test_clocks). */
const accountNow = (now: Date): SQL => sql`coalesce(${testClocks.frozenTime}, ${now.toISOString()}::timestamptz)`;

/**
 * Due renewals the batch drain leaves alone (test clocks, cancellations, scheduled changes,
 * offline methods...: the negation of batchable), locked SKIP LOCKED so sweeps side by side
 * do not read the same rows.
 */
export async function lockDueSingles(tx: Db, now: Date, noticeHours: number, limit: number) {
  return tx
    .select({ id: subscriptions.id, periodEnd: subscriptions.currentPeriodEnd })
    .from(subscriptions)
    .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
    .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
    .leftJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
    .where(and(eq(subscriptions.status, 'active'), lte(subscriptions.currentPeriodEnd, accountNow(now)), not(batchable(now, noticeHours))))
    .orderBy(asc(subscriptions.currentPeriodEnd))
    .limit(limit)
    .for('update', { of: subscriptions, skipLocked: true });
}

/** Open invoices whose next dunning step is due, locked SKIP LOCKED. */
export async function lockDueRetries(tx: Db, now: Date, limit: number) {
  return tx
    .select({ id: invoices.id, attempt: invoices.attemptCount })
    .from(invoices)
    .innerJoin(accounts, eq(accounts.id, invoices.accountId))
    .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
    .where(and(eq(invoices.status, 'open'), isNotNull(invoices.nextAttemptAt), lte(invoices.nextAttemptAt, accountNow(now))))
    .orderBy(asc(invoices.nextAttemptAt))
    .limit(limit)
    .for('update', { of: invoices, skipLocked: true });
}

/** Pre-debit notices (Indian card and UPI mandates) that fall due before a period end and are not sent yet. */
export async function listDueNotices(db: Db, now: Date, noticeHours: number, limit: number) {
  const at = accountNow(now);
  return db
    .select({ id: subscriptions.id, periodEnd: subscriptions.currentPeriodEnd })
    .from(subscriptions)
    .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
    .innerJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
    .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
    .where(
      and(
        eq(subscriptions.status, 'active'),
        eq(subscriptions.cancelAtPeriodEnd, false),
        eq(accounts.currency, 'INR'),
        inArray(paymentMethods.type, ['card', 'upi']),
        sql`${subscriptions.renewalNoticeFor} is distinct from ${subscriptions.currentPeriodEnd}`,
        sql`${subscriptions.currentPeriodEnd} - ${`${noticeHours} hours`}::interval <= ${at}`,
        sql`${subscriptions.currentPeriodEnd} > ${at}`,
      ),
    )
    .limit(limit);
}

/** The pre-debit notice for the period ending `periodEnd` went out at `now`. */
export async function markNoticeSent(tx: Db, subscriptionId: string, periodEnd: Date, now: Date): Promise<void> {
  await tx.update(subscriptions).set({ renewalNoticeFor: periodEnd, renewalNoticeAt: now }).where(eq(subscriptions.id, subscriptionId));
}

/** Dunning: the subscription and its account are past_due (since the first time, for the account). */
export async function markPastDue(tx: Db, subscriptionId: string, accountId: string, now: Date): Promise<void> {
  await tx.update(subscriptions).set({ status: 'past_due', updatedAt: now }).where(eq(subscriptions.id, subscriptionId));
  await tx
    .update(accounts)
    .set({ status: 'past_due', pastDueSince: sql`coalesce(${accounts.pastDueSince}, ${now.toISOString()}::timestamptz)`, updatedAt: now })
    .where(eq(accounts.id, accountId));
}

/** Paid after all: the subscription and its account are active again. */
export async function markRecovered(tx: Db, subscriptionId: string, accountId: string, now: Date): Promise<void> {
  await tx.update(subscriptions).set({ status: 'active', updatedAt: now }).where(eq(subscriptions.id, subscriptionId));
  await tx.update(accounts).set({ status: 'active', pastDueSince: null, updatedAt: now }).where(eq(accounts.id, accountId));
}

/** The subscription ends; the account keeps its data and credits, limited. */
export async function markEnded(tx: Db, subscriptionId: string, accountId: string, now: Date): Promise<void> {
  await tx.update(subscriptions).set({ status: 'cancelled', cancelAtPeriodEnd: false, endedAt: now, updatedAt: now }).where(eq(subscriptions.id, subscriptionId));
  await tx.update(accounts).set({ status: 'limited', pastDueSince: null, updatedAt: now }).where(eq(accounts.id, accountId));
}

/** Work still due on a test clock (renewals, retries, charges in flight, recharges, notices): advancing it waits for zero. */
export async function pendingOnClock(db: Db, testClockId: string, noticeHours: number): Promise<number> {
  const result = await db.execute<{ n: string }>(sql`
    select
      (select count(*) from subscriptions s join accounts a on a.id = s.account_id join test_clocks c on c.id = a.test_clock_id
        where c.id = ${testClockId} and s.status = 'active' and s.current_period_end <= c.frozen_time)
    + (select count(*) from invoices i join accounts a on a.id = i.account_id join test_clocks c on c.id = a.test_clock_id
        where c.id = ${testClockId} and i.status = 'open' and i.next_attempt_at <= c.frozen_time)
    + (select count(*) from payments p join accounts a on a.id = p.account_id
        where a.test_clock_id = ${testClockId} and p.purpose in ('renewal', 'recharge') and p.status in ('processing', 'unknown'))
    + (select count(*) from auto_recharge_settings r join accounts a on a.id = r.account_id join test_clocks c on c.id = a.test_clock_id
        where c.id = ${testClockId} and r.enabled and r.next_attempt_at <= c.frozen_time)
    + (select count(*) from subscriptions s join accounts a on a.id = s.account_id join test_clocks c on c.id = a.test_clock_id
        join payment_methods m on m.id = s.payment_method_id
        where c.id = ${testClockId} and ${noticeHours} > 0 and s.status = 'active' and not s.cancel_at_period_end
          and a.currency = 'INR' and m.type in ('card', 'upi') and s.renewal_notice_for is distinct from s.current_period_end
          and s.current_period_end - make_interval(hours => ${noticeHours}) <= c.frozen_time and s.current_period_end > c.frozen_time)
    as n`);
  const rows = (result as unknown as { rows: Array<{ n: string }> }).rows;
  return Number(rows[0]?.n ?? 0);
}
