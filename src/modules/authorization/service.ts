import { eq } from 'drizzle-orm';
import type { ChangeFeed } from '../../db/change-feed.js';
import type { Db } from '../../db/client.js';
import { accounts } from '../../db/schema/index.js';
import { InvalidatedCache } from '../../lib/cache.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { toE164 } from '../../lib/phone.js';
import * as accountsRepo from '../accounts/repo.js';
import { countLiveExophones } from '../exophones/service.js';
import { authorize, type Action } from './domain.js';
import { loadFacts, type AccountFacts } from './facts.js';

const details: Record<string, string> = {
  account_limited: 'The account is limited (cancelled, or its renewal could not be paid): no outbound calls or SMS',
  past_due_beyond_grace: 'The renewal payment is overdue beyond the grace period',
  number_not_whitelisted: 'Trial accounts may call and text whitelisted numbers only',
  dlt_required: 'SMS to Indian numbers needs DLT registration (PUT /v1/accounts/{id}/dlt)',
  insufficient_credits: 'The available balance (balance less holds) does not cover one pulse or one SMS',
  feature_not_in_plan: 'The plan does not include this',
  kyc_not_approved: 'Production ExoPhones need approved KYC',
  paid_plan_required: 'This needs an active paid plan',
  exophone_limit_reached: 'The plan\'s ExoPhone limit is reached',
  destination_required: 'Calls and SMS need a destination number',
};

/**
 * Answers the voice and SMS platform's "may this account do this now?". With a change feed
 * (the api) an account's facts are cached: every write that can change an answer notifies
 * the feed in its own transaction (migration 0014), and this process also drops an account
 * as soon as one of its services committed a change to it (`invalidate`, given to them as
 * `accountChanged`), so an answer is never older than the last change. Accounts on a test
 * clock are never cached.
 */
export function createAuthorizationService(deps: { db: Db; clock: Clock; graceDays: number; changes?: ChangeFeed; cacheSize?: number }) {
  const { db, clock, changes } = deps;
  const facts = new InvalidatedCache<AccountFacts>({ max: deps.cacheSize ?? 50_000, ttlMs: 5 * 60_000, trusted: () => changes?.live ?? false });
  // One object per distinct entitlements, however many accounts are cached. Keyed by content,
  // not plan id, so a load that raced a catalog change can never lend its old object to others.
  const sharedEntitlements = new Map<string, AccountFacts['entitlements']>();
  changes?.subscribe((change) => {
    if (change.kind === 'account' || change.kind === 'balance') facts.invalidate(change.accountId);
    else if (change.kind === 'catalog' || change.kind === 'reset') {
      facts.clear();
      sharedEntitlements.clear();
    }
  });

  // Answers by action and outcome (`allowed` or the reason), for /metrics: the hot routes write
  // no request log lines at info, so this is where an operator sees a surge of refusals.
  const outcomes = new Map<string, { action: string; outcome: string; count: number }>();
  function record(action: Action, reason: string | null) {
    const outcome = reason ?? 'allowed';
    const key = `${action}:${outcome}`;
    const seen = outcomes.get(key);
    if (seen) seen.count++;
    else outcomes.set(key, { action, outcome, count: 1 });
  }

  const load = async (accountId: string) => {
    const loaded = await loadFacts(db, accountId);
    if (!loaded) return null;
    const key = JSON.stringify(loaded.entitlements);
    const shared = sharedEntitlements.get(key);
    if (shared) loaded.entitlements = shared;
    else if (sharedEntitlements.size < 1000) sharedEntitlements.set(key, loaded.entitlements);
    return loaded;
  };

  /** `credits: false` leaves the money out: a hold decides it against the locked balance instead. */
  async function check(accountId: string, input: { action: Action; destination?: string }, opts: { credits?: boolean } = {}) {
    const destination = input.destination ? toE164(input.destination) : null;
    if (input.destination && !destination) throw new AppError('invalid_phone_number', `${JSON.stringify(input.destination)} is not a valid E.164 number`);
    const f = await facts.get(accountId, () => load(accountId), (loaded) => loaded.testClockId === null);
    if (!f) throw new AppError('account_not_found', `No account ${accountId}`);
    const needsCredits = (input.action === 'outbound_call' || input.action === 'outbound_sms') && opts.credits !== false;
    const reason = authorize(input.action, {
      status: f.status,
      kycStatus: f.kycStatus,
      pastDueSince: f.pastDueSince,
      graceDays: deps.graceDays,
      entitlements: f.entitlements,
      whatsappAddon: f.whatsappAddon,
      dltRegistered: f.dltRegistered,
      balance: f.balance,
      rates: needsCredits ? f.rates : null,
      destination,
      destinationWhitelisted: destination !== null && (f.whitelist?.has(destination) ?? false),
      // A purchase is rare and not the hot path: count the numbers now.
      exophonesInUse: input.action === 'purchase_exophone' ? await countLiveExophones(db, accountId) : 0,
      now: f.frozenTime ?? clock.now(),
    });
    return { allowed: reason === null, reason, detail: reason ? details[reason]! : null };
  }

  /**
   * This process committed a change to the account: forget it now rather than when the
   * notification arrives, so the caller's next check sees its own change. Without a change
   * feed (the worker, the CLI) nothing is cached and this does nothing.
   */
  function invalidate(accountId: string) {
    facts.invalidate(accountId);
  }

  /** An available balance (balance less holds) this process just wrote: drop the facts if it could change an answer. */
  function noteBalance(accountId: string, balance: number) {
    const cached = facts.peek(accountId);
    // Not cached: drop a load that may be running, which could have read the balance before.
    if (!cached) return facts.invalidate(accountId);
    if (cached.balance === balance) return;
    const unit = cached.rates ? Math.max(cached.rates.perPulseRate, cached.rates.perSmsRate) : 0;
    if (Math.min(cached.balance, balance) < unit) facts.invalidate(accountId);
  }

  async function setDlt(accountId: string, entityId: string | null) {
    const account = await accountsRepo.findAccount(db, accountId);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    await db.update(accounts).set({ dltEntityId: entityId, updatedAt: clock.now() }).where(eq(accounts.id, accountId));
    invalidate(accountId);
    return { accountId, dltEntityId: entityId, registered: entityId !== null };
  }

  return { check, setDlt, invalidate, noteBalance, record, outcomes: () => outcomes.values() };
}

export type AuthorizationService = ReturnType<typeof createAuthorizationService>;
