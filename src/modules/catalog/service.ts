import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Currency } from '../../lib/money.js';
import { appendEvents } from '../events/repo.js';
import { customEnterpriseEntitlements, discountPercent, planVersionId } from './domain.js';
import * as repo from './repo.js';
import type { CreateCustomPlanInput, CreatePlanVersionInput, Plan, PlanPrice } from './schemas.js';

export function createCatalogService(deps: { db: Db; clock: Clock; findAccount: (db: Db, id: string) => Promise<{ id: string; currency: Currency } | undefined> }) {
  const { db, clock } = deps;

  async function withPrices(rows: repo.PlanRow[], currency?: Currency): Promise<Plan[]> {
    const prices = await repo.pricesOf(db, rows.map((r) => r.id));
    return rows.map((row) => toPlan(row, prices.filter((p) => p.planId === row.id && (!currency || p.currency === currency))));
  }

  async function listPlans(opts: { accountId: string | null; currency?: Currency }): Promise<Plan[]> {
    return withPrices(await repo.listCurrentPlans(db, opts.accountId), opts.currency);
  }

  /** Any version, current or superseded; custom plans only for the account they are offered to. */
  async function getPlan(id: string, viewer: { accountId: string | null }): Promise<Plan> {
    const row = await repo.findPlan(db, id);
    if (!row || (viewer.accountId && row.kind === 'custom' && row.offeredToAccountId !== viewer.accountId)) {
      throw new AppError('plan_not_found', `No plan ${id}`);
    }
    const [plan] = await withPrices([row]);
    return plan!;
  }

  async function assertAccountExists(accountId: string): Promise<void> {
    if (!(await deps.findAccount(db, accountId))) throw new AppError('account_not_found', `No account ${accountId}`);
  }

  async function listBillingCycles() {
    const rows = await repo.listBillingCycles(db);
    return rows.map((r) => ({ ...r, discountPercent: discountPercent(r.discountBps) }));
  }

  async function createCustomPlan(input: CreateCustomPlanInput): Promise<Plan> {
    const account = await deps.findAccount(db, input.accountId);
    if (!account) throw new AppError('account_not_found', `No account ${input.accountId}`);
    if (!input.prices.some((p) => p.currency === account.currency)) {
      throw new AppError('currency_not_priced', `The account bills in ${account.currency}: give a price in ${account.currency}`);
    }
    const enterprise = await repo.findCurrentPlanByCode(db, 'enterprise');
    if (!enterprise) throw new Error('the catalog has no enterprise plan');
    const now = clock.now();
    const code = `custom_${newId('x', now).slice(2)}`;
    const id = planVersionId(code, 1);
    await db.transaction(async (tx) => {
      await repo.insertPlan(
        tx,
        {
          id,
          code,
          version: 1,
          kind: 'custom',
          tier: 'enterprise',
          name: input.name,
          description: input.description,
          commitment: 'custom',
          entitlements: customEnterpriseEntitlements(enterprise.entitlements, input),
          offeredToAccountId: account.id,
          createdAt: now,
        },
        input.prices.map((p) => ({ ...p, planId: id })),
      );
      await appendEvents(tx, now, [{ type: 'plan.custom_offered', accountId: account.id, payload: { planId: id } }]);
    });
    return getPlan(id, { accountId: null });
  }

  /**
   * A price or entitlement change: a new version that later purchases get. The old version
   * stays as it was, so nobody who bought it pays another price.
   */
  async function createPlanVersion(planId: string, input: CreatePlanVersionInput): Promise<Plan> {
    const now = clock.now();
    const newPlanId = await db.transaction(async (tx) => {
      const current = await repo.findPlan(tx, planId, { forUpdate: true });
      if (!current || current.kind === 'trial') throw new AppError('plan_not_found', `No plan ${planId}`);
      if (current.supersededAt) {
        throw new AppError('plan_version_conflict', `${planId} was replaced by a newer version; version that one`);
      }
      // Existing buyers in a currency must still find the plan priced in it.
      const before = await repo.pricesOf(tx, [current.id]);
      const dropped = before.filter((p) => !input.prices.some((n) => n.currency === p.currency)).map((p) => p.currency);
      if (dropped.length) {
        throw new AppError('currency_not_priced', `The new version must keep a price in ${dropped.join(', ')}`, { missingCurrencies: dropped });
      }
      const version = current.version + 1;
      const id = planVersionId(current.code, version);
      await repo.supersedePlan(tx, current.id, now);
      await repo.insertPlan(
        tx,
        {
          ...current,
          id,
          version,
          name: input.name ?? current.name,
          description: input.description ?? current.description,
          entitlements: input.entitlements ?? current.entitlements,
          supersededAt: null,
          createdAt: now,
        },
        input.prices.map((p) => ({ ...p, planId: id })),
      );
      await appendEvents(tx, now, [
        { type: 'plan.version_created', accountId: current.offeredToAccountId, payload: { planId: id, previousPlanId: current.id } },
      ]);
      return id;
    });
    return getPlan(newPlanId, { accountId: null });
  }

  return { listPlans, getPlan, listBillingCycles, createCustomPlan, createPlanVersion, assertAccountExists };
}

export type CatalogService = ReturnType<typeof createCatalogService>;

function toPlan(row: repo.PlanRow, prices: repo.PlanPriceRow[]): Plan {
  return {
    id: row.id,
    code: row.code,
    version: row.version,
    kind: row.kind,
    tier: row.tier,
    name: row.name,
    description: row.description,
    commitment: row.commitment,
    entitlements: row.entitlements,
    prices: prices.map(
      (p): PlanPrice => ({
        currency: p.currency,
        monthlyMinimum: p.monthlyMinimum,
        minInitialCredits: p.minInitialCredits,
        pulseSeconds: p.pulseSeconds,
        perPulseRate: p.perPulseRate,
        perSmsRate: p.perSmsRate,
        whatsappAddonMonthly: p.whatsappAddonMonthly,
      }),
    ),
    offeredToAccountId: row.offeredToAccountId,
    current: row.supersededAt === null,
    createdAt: row.createdAt,
  };
}
