import { and, asc, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { billingCycles, planPrices, plans } from '../../db/schema/index.js';

export type PlanRow = typeof plans.$inferSelect;
export type PlanPriceRow = typeof planPrices.$inferSelect;

/** Current versions of the standard plans, and of the custom plans offered to `accountId`. */
export async function listCurrentPlans(db: Db, accountId: string | null): Promise<PlanRow[]> {
  const offered = accountId
    ? or(eq(plans.kind, 'standard'), and(eq(plans.kind, 'custom'), eq(plans.offeredToAccountId, accountId)))
    : eq(plans.kind, 'standard');
  return db
    .select()
    .from(plans)
    .where(and(isNull(plans.supersededAt), offered))
    .orderBy(asc(plans.kind), asc(plans.tier), asc(plans.createdAt));
}

export async function findPlan(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<PlanRow | undefined> {
  const query = db.select().from(plans).where(eq(plans.id, id)).limit(1);
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

/** Plans by id, superseded or not (what subscriptions were sold). */
export async function findPlans(db: Db, ids: string[]): Promise<PlanRow[]> {
  if (ids.length === 0) return [];
  return db.select().from(plans).where(sql`${plans.id} = any(${sql.param(ids)}::text[])`);
}

export async function findCurrentPlanByCode(db: Db, code: string): Promise<PlanRow | undefined> {
  const [row] = await db
    .select()
    .from(plans)
    .where(and(eq(plans.code, code), isNull(plans.supersededAt)))
    .limit(1);
  return row;
}

export async function pricesOf(db: Db, planIds: string[]): Promise<PlanPriceRow[]> {
  if (planIds.length === 0) return [];
  return db.select().from(planPrices).where(inArray(planPrices.planId, planIds)).orderBy(asc(planPrices.currency));
}

export async function insertPlan(db: Db, plan: typeof plans.$inferInsert, prices: (typeof planPrices.$inferInsert)[]): Promise<void> {
  await db.insert(plans).values(plan);
  await db.insert(planPrices).values(prices);
}

export async function supersedePlan(db: Db, id: string, at: Date): Promise<void> {
  await db.update(plans).set({ supersededAt: at }).where(eq(plans.id, id));
}

export async function findBillingCycle(db: Db, code: string) {
  const [row] = await db.select().from(billingCycles).where(eq(billingCycles.code, code as (typeof billingCycles.$inferSelect)['code']));
  return row;
}

export async function listBillingCycles(db: Db) {
  return db.select().from(billingCycles).orderBy(asc(billingCycles.position));
}
