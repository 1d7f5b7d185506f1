import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { AuthorizationService } from '../authorization/service.js';
import { findHold, type CreditCommitter, type CreditOp, type OpResult } from '../credits/committer.js';
import type { Hold, HoldAction, HoldReason } from './domain.js';

type Viewer = { accountId: string | null };
type HoldOutcome = Extract<OpResult, { kind: 'hold' }>;

const refusals: Record<string, string> = {
  insufficient_credits: 'The available balance (balance less holds) does not cover what is asked',
  account_limited: 'The account is limited (cancelled, or its renewal could not be paid): no outbound calls or SMS',
};

const reused = (reference: string, existing: Hold) =>
  new AppError('hold_reference_reused', `Reference ${reference} already holds for ${existing.action} to ${existing.destination}: a retry must send the same call`);

export function toHoldDto(h: Hold) {
  return {
    id: h.id,
    accountId: h.accountId,
    reference: h.reference,
    action: h.action,
    destination: h.destination,
    units: h.units,
    amount: h.amount,
    currency: h.currency,
    status: h.status,
    expiresAt: h.expiresAt,
    usageEventId: h.usageEventId,
    settledAmount: h.settledAmount,
    createdAt: h.createdAt,
  };
}

/**
 * Holds: credits reserved when a call or message starts, so concurrent traffic cannot spend
 * more than the balance. The rules that need no money (limited, whitelist, DLT, plan) are
 * authorize's own; the money is decided in the credit committer's transaction, against the
 * locked balance less every other active hold.
 */
export function createHoldsService(deps: {
  db: Db;
  clock: Clock;
  committer: CreditCommitter;
  authorization: AuthorizationService;
  defaultTtlSeconds: number;
}) {
  const { db, clock, committer, authorization } = deps;

  async function apply(op: CreditOp): Promise<HoldOutcome> {
    const flushed = await committer.submit([op]);
    const balance = flushed.balances.get(op.kind === 'usage' ? op.event.accountId : op.accountId);
    if (balance) authorization.noteBalance(op.kind === 'usage' ? op.event.accountId : op.accountId, balance.balance - balance.held);
    return flushed.results[0] as HoldOutcome;
  }

  const answer = (outcome: HoldOutcome) => ({
    granted: outcome.refused === null,
    reason: outcome.refused === null ? null : (outcome.refused as HoldReason),
    detail: outcome.refused === null ? null : (refusals[outcome.refused] ?? null),
    hold: outcome.refused === null && outcome.hold ? toHoldDto(outcome.hold) : null,
    duplicate: outcome.duplicate,
  });

  const findByReference = (accountId: string, reference: string) => findHold(db, { accountId, reference });

  /** Holds credits for a call or message about to start; the same reference holds once. */
  async function hold(accountId: string, input: { action: HoldAction; destination: string; reference: string; units?: number; ttlSeconds?: number }) {
    // Everything but the money from authorize (cached facts); the money in the transaction.
    const check = await authorization.check(accountId, { action: input.action, destination: input.destination }, { credits: false });
    if (!check.allowed) {
      // A retry of a hold granted before the account changed still answers that hold.
      const existing = await findByReference(accountId, input.reference);
      if (existing && existing.action === input.action && existing.destination === input.destination) {
        return { granted: true, reason: null, detail: null, hold: toHoldDto(existing), duplicate: true };
      }
      if (existing) throw reused(input.reference, existing);
      return { granted: false, reason: check.reason as HoldReason, detail: check.detail, hold: null, duplicate: false };
    }
    const outcome = await apply({
      kind: 'hold',
      accountId,
      reference: input.reference,
      action: input.action,
      destination: input.destination,
      units: input.units ?? 1,
      ttlSeconds: input.ttlSeconds ?? deps.defaultTtlSeconds,
    });
    if (outcome.refused === 'hold_not_found') throw new AppError('account_not_found', `No account ${accountId}`);
    if (outcome.refused === 'hold_reference_reused') throw reused(input.reference, outcome.hold!);
    return answer(outcome);
  }

  /** The account a hold belongs to, if the viewer may see it. */
  async function accountOfHold(holdId: string, viewer: Viewer): Promise<string> {
    const found = await findHold(db, { id: holdId });
    if (!found || (viewer.accountId && viewer.accountId !== found.accountId)) throw new AppError('hold_not_found', `No hold ${holdId}`);
    return found.accountId;
  }

  async function get(holdId: string, viewer: Viewer) {
    const found = await findHold(db, { id: holdId });
    if (!found || (viewer.accountId && viewer.accountId !== found.accountId)) throw new AppError('hold_not_found', `No hold ${holdId}`);
    return toHoldDto(found);
  }

  /** Adds units as a long call goes on; refused (the platform ends the call) when available cannot cover them. */
  async function extend(holdId: string, input: { units: number; ttlSeconds?: number }, viewer: Viewer) {
    const accountId = await accountOfHold(holdId, viewer);
    const outcome = await apply({ kind: 'extend', accountId, holdId, units: input.units, ttlSeconds: input.ttlSeconds ?? null });
    if (outcome.refused === 'hold_not_found') throw new AppError('hold_not_found', `No hold ${holdId}`);
    if (outcome.refused === 'hold_not_active') throw new AppError('hold_not_active', `Hold ${holdId} is ${outcome.hold?.status}: it can no longer be extended`);
    return { ...answer(outcome), hold: outcome.hold ? toHoldDto(outcome.hold) : null };
  }

  /** Frees what is left held; releasing a hold that has ended answers it as it is. */
  async function release(holdId: string, viewer: Viewer) {
    const accountId = await accountOfHold(holdId, viewer);
    const outcome = await apply({ kind: 'release', accountId, holdId, expire: false });
    if (!outcome.hold) throw new AppError('hold_not_found', `No hold ${holdId}`);
    return toHoldDto(outcome.hold);
  }

  /**
   * Releases holds whose time ran out (a caller that crashed, a record that never came),
   * oldest first, on each account's own clock. Found in Postgres: any worker may run it.
   */
  async function expireDue(limit = 1000): Promise<number> {
    const now = clock.now().toISOString();
    const due = (
      (await db.execute(sql`
        select h.id, h.account_id from credit_holds h
        join accounts a on a.id = h.account_id
        left join test_clocks c on c.id = a.test_clock_id
        where h.status = 'active'
          and h.expires_at <= (select greatest(${now}::timestamptz, max(frozen_time)) from test_clocks)
          and h.expires_at <= coalesce(c.frozen_time, ${now}::timestamptz)
        order by h.expires_at
        limit ${limit}`)) as unknown as { rows: Array<{ id: string; account_id: string }> }
    ).rows;
    if (due.length === 0) return 0;
    const flushed = await committer.submit(due.map((d) => ({ kind: 'release', accountId: d.account_id, holdId: d.id, expire: true })));
    for (const [accountId, b] of flushed.balances) authorization.noteBalance(accountId, b.balance - b.held);
    return flushed.results.filter((r) => r.kind === 'hold' && r.hold?.status === 'expired' && !r.duplicate).length;
  }

  return { hold, get, extend, release, expireDue };
}

export type HoldsService = ReturnType<typeof createHoldsService>;
