import { and, asc, count, eq, isNull } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { exophones } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { toE164 } from '../../lib/phone.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents } from '../events/repo.js';
import { nowForAccount } from '../test-clocks/time.js';

export async function countLiveExophones(db: Db, accountId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(exophones).where(and(eq(exophones.accountId, accountId), isNull(exophones.releasedAt)));
  return row?.n ?? 0;
}

/** Production numbers: KYC approved and a paid plan, within the plan's limit. */
export function createExophonesService(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;

  const toDto = (row: typeof exophones.$inferSelect) => ({ id: row.id, number: row.number, purchasedAt: row.purchasedAt });

  async function list(accountId: string) {
    const account = await accountsRepo.findAccount(db, accountId);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    const rows = await db
      .select()
      .from(exophones)
      .where(and(eq(exophones.accountId, accountId), isNull(exophones.releasedAt)))
      .orderBy(asc(exophones.purchasedAt));
    const plan = await catalogRepo.findPlan(db, account.planId);
    return { data: rows.map(toDto), limit: plan ? plan.entitlements.exophones.limit : 0, trialNumbers: plan?.entitlements.exophones.trialNumbers ?? 0 };
  }

  async function purchase(accountId: string, input: string) {
    const number = toE164(input);
    if (!number) throw new AppError('invalid_phone_number', `${JSON.stringify(input)} is not a valid E.164 number`);
    return purchaseNumber(accountId, number).catch((err) => {
      // Two accounts buying one number at once: the unique index decides, the loser hears why.
      if ((err as { cause?: { code?: string } }).cause?.code === '23505') throw new AppError('exophone_taken', `${number} belongs to another account`);
      throw err;
    });
  }

  async function purchaseNumber(accountId: string, number: string) {
    return db.transaction(async (tx) => {
      // The account lock serialises purchases, so two cannot both take the last place.
      const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: true });
      if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
      if (account.kycStatus !== 'approved') throw new AppError('kyc_not_approved', 'Production ExoPhones need approved KYC');
      if (account.status !== 'active') throw new AppError('paid_plan_required', `Production ExoPhones need an active paid plan; the account is ${account.status}`);
      const plan = (await catalogRepo.findPlan(tx, account.planId))!;
      const limit = plan.entitlements.exophones.limit;
      const inUse = await countLiveExophones(tx, accountId);
      if (limit !== null && inUse >= limit) {
        throw new AppError('exophone_limit_reached', `${plan.name} allows ${limit} ExoPhones and ${inUse} are in use`, { limit, inUse });
      }
      const [taken] = await tx.select().from(exophones).where(and(eq(exophones.number, number), isNull(exophones.releasedAt)));
      if (taken) {
        if (taken.accountId === accountId) return { created: false, exophone: toDto(taken) };
        throw new AppError('exophone_taken', `${number} belongs to another account`);
      }
      const now = await nowForAccount(tx, account, clock);
      const [row] = await tx.insert(exophones).values({ id: newId('exo', now), accountId, number, purchasedAt: now }).returning();
      await appendEvents(tx, now, [{ type: 'exophone.purchased', accountId, payload: { accountId, exophoneId: row!.id, number } }]);
      return { created: true, exophone: toDto(row!) };
    });
  }

  async function release(accountId: string, exophoneId: string) {
    await db.transaction(async (tx) => {
      const account = await accountsRepo.findAccount(tx, accountId, { forUpdate: true });
      if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
      const now = await nowForAccount(tx, account, clock);
      const released = await tx
        .update(exophones)
        .set({ releasedAt: now })
        .where(and(eq(exophones.id, exophoneId), eq(exophones.accountId, accountId), isNull(exophones.releasedAt)))
        .returning();
      if (!released.length) throw new AppError('exophone_not_found', `No ExoPhone ${exophoneId}`);
      await appendEvents(tx, now, [{ type: 'exophone.released', accountId, payload: { accountId, exophoneId, number: released[0]!.number } }]);
    });
  }

  return { list, purchase, release };
}

export type ExophonesService = ReturnType<typeof createExophonesService>;
