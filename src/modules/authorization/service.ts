import { and, eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, planPrices, whitelistedNumbers } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { toE164 } from '../../lib/phone.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { balanceOf } from '../credits/repo.js';
import { countLiveExophones } from '../exophones/service.js';
import { findLiveSubscription } from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { authorize, type Action } from './domain.js';

const details: Record<string, string> = {
  account_limited: 'The account is limited (cancelled, or its renewal could not be paid): no outbound calls or SMS',
  past_due_beyond_grace: 'The renewal payment is overdue beyond the grace period',
  number_not_whitelisted: 'Trial accounts may call and text whitelisted numbers only',
  dlt_required: 'SMS to Indian numbers needs DLT registration (PUT /v1/accounts/{id}/dlt)',
  insufficient_credits: 'The balance does not cover one pulse or one SMS',
  feature_not_in_plan: 'The plan does not include this',
  kyc_not_approved: 'Production ExoPhones need approved KYC',
  paid_plan_required: 'This needs an active paid plan',
  exophone_limit_reached: 'The plan\'s ExoPhone limit is reached',
  destination_required: 'Calls and SMS need a destination number',
};

/**
 * Answers the voice and SMS platform's "may this account do this now?" from the current
 * rows, so every change (upgrade, renewal, limit, balance) counts from the next check.
 */
export function createAuthorizationService(deps: { db: Db; clock: Clock; graceDays: number }) {
  const { db, clock } = deps;

  async function check(accountId: string, input: { action: Action; destination?: string }) {
    const destination = input.destination ? toE164(input.destination) : null;
    if (input.destination && !destination) throw new AppError('invalid_phone_number', `${JSON.stringify(input.destination)} is not a valid E.164 number`);
    const account = await accountsRepo.findAccount(db, accountId);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    const plan = (await catalogRepo.findPlan(db, account.planId))!;
    const needsCredits = input.action === 'outbound_call' || input.action === 'outbound_sms';
    const [rates] = needsCredits
      ? await db.select().from(planPrices).where(and(eq(planPrices.planId, account.planId), eq(planPrices.currency, account.currency)))
      : [];
    const [whitelisted] =
      destination && plan.entitlements.numberWhitelisting.required
        ? await db.select().from(whitelistedNumbers).where(and(eq(whitelistedNumbers.accountId, accountId), eq(whitelistedNumbers.number, destination)))
        : [];
    const reason = authorize(input.action, {
      status: account.status,
      kycStatus: account.kycStatus,
      pastDueSince: account.pastDueSince,
      graceDays: deps.graceDays,
      entitlements: plan.entitlements,
      whatsappAddon: input.action === 'whatsapp' ? ((await findLiveSubscription(db, accountId))?.whatsappAddon ?? false) : false,
      dltRegistered: account.dltEntityId !== null,
      balance: needsCredits ? await balanceOf(db, accountId) : 0,
      rates: rates ? { perPulseRate: rates.perPulseRate, perSmsRate: rates.perSmsRate } : null,
      destination,
      destinationWhitelisted: !!whitelisted,
      exophonesInUse: input.action === 'purchase_exophone' ? await countLiveExophones(db, accountId) : 0,
      now: await nowForAccount(db, account, clock),
    });
    return { allowed: reason === null, reason, detail: reason ? details[reason]! : null };
  }

  async function setDlt(accountId: string, entityId: string | null) {
    const account = await accountsRepo.findAccount(db, accountId);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    await db.update(accounts).set({ dltEntityId: entityId, updatedAt: clock.now() }).where(eq(accounts.id, accountId));
    return { accountId, dltEntityId: entityId, registered: entityId !== null };
  }

  return { check, setDlt };
}

export type AuthorizationService = ReturnType<typeof createAuthorizationService>;
