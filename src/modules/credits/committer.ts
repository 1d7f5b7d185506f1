import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { executePrepared } from '../../db/prepared.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import type { Currency } from '../../lib/money.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import { extendedExpiry, settlement, unitAmountOf, type Hold, type HoldAction } from '../holds/domain.js';
import { rate, type Rates } from './domain.js';
import type { UsageBatch, UsageResult } from './schemas.js';

type UsageEvent = UsageBatch['events'][number];
type Result = UsageResult['results'][number];

/** One change to an account's credits, as the committer takes them. */
export type CreditOp =
  | { kind: 'usage'; event: UsageEvent }
  | { kind: 'hold'; accountId: string; reference: string; action: HoldAction; destination: string | null; units: number; ttlSeconds: number }
  | { kind: 'extend'; accountId: string; holdId: string; units: number; ttlSeconds: number | null }
  | { kind: 'release'; accountId: string; holdId: string; expire: boolean };

export type HoldRefusal = 'insufficient_credits' | 'account_limited' | 'hold_not_found' | 'hold_not_active' | 'hold_reference_reused';

export type OpResult =
  | { kind: 'usage'; result: Result }
  | { kind: 'hold'; hold: Hold | null; refused: HoldRefusal | null; duplicate: boolean };

export interface Balance {
  currency: Currency;
  balance: number;
  held: number;
}

/** What a flush decided: each op's result, in the order given, and the balances it left. */
export interface Flushed {
  results: OpResult[];
  balances: Map<string, Balance>;
}

const keyOf = (accountId: string, id: string) => `${accountId}\u0000${id}`;
const param = <T>(values: T[]) => sql.param(values);
const accountOf = (op: CreditOp) => (op.kind === 'usage' ? op.event.accountId : op.accountId);

interface LockedAccount {
  id: string;
  status: string;
  currency: Currency;
  balance: string | number;
  held: string | number;
  pulse_seconds: number | null;
  per_pulse_rate: string | number | null;
  per_sms_rate: string | number | null;
  frozen_time: string | Date | null;
  low_balance_threshold: string | number | null;
  low_balance_alerted_at: string | Date | null;
}

interface HoldRow {
  id: string;
  account_id: string;
  reference: string;
  action: HoldAction;
  destination: string | null;
  units: number;
  unit_amount: string | number;
  amount: string | number;
  currency: Currency;
  status: Hold['status'];
  ttl_seconds: number;
  expires_at: string | Date;
  usage_event_id: string | null;
  settled_amount: string | number | null;
  created_at: string | Date;
  updated_at: string | Date;
}

const asDate = (v: string | Date) => (v instanceof Date ? v : new Date(v));

function holdOf(r: HoldRow): Hold {
  return {
    id: r.id,
    accountId: r.account_id,
    reference: r.reference,
    action: r.action,
    destination: r.destination,
    units: r.units,
    unitAmount: Number(r.unit_amount),
    amount: Number(r.amount),
    currency: r.currency,
    status: r.status,
    ttlSeconds: r.ttl_seconds,
    expiresAt: asDate(r.expires_at),
    usageEventId: r.usage_event_id,
    settledAmount: r.settled_amount === null ? null : Number(r.settled_amount),
    createdAt: asDate(r.created_at),
    updatedAt: asDate(r.updated_at),
  };
}

/** A hold by id or by its account and reference, as it is committed. */
export async function findHold(db: Db, by: { id: string } | { accountId: string; reference: string }): Promise<Hold | null> {
  const where = 'id' in by ? sql`id = ${by.id}` : sql`account_id = ${by.accountId} and reference = ${by.reference}`;
  const result = (await db.execute(sql`select * from credit_holds where ${where}`)) as unknown as { rows: HoldRow[] };
  return result.rows[0] ? holdOf(result.rows[0]) : null;
}

/**
 * Group commit for everything that moves credits per call and message: usage debits and
 * holds (granted, extended, released, settled). Ops wait in a lane (an account always maps to
 * the same lane); while a lane's transaction runs, what arrives meanwhile queues up and goes
 * in the lane's next transaction, however many callers sent it. So 64 callers on one account
 * make a handful of transactions, not 64 queued on its row lock, and each caller still gets
 * its own results. Lanes never share an account, so they never wait on each other's locks;
 * another process's transactions do, and every transaction locks its accounts in id order.
 *
 * Inside a transaction the ops of an account apply one after another against its locked
 * balance and holds, so a hold is granted only from what is available (balance - held) at
 * that point and the sum of active holds never exceeds the balance (a check constraint says
 * so as well).
 */
export function createCreditCommitter(deps: {
  db: Db;
  clock: Clock;
  lanes?: number;
  maxOps?: number;
  /** The low-balance line of accounts without their own, per currency; absent, no low-balance alerts. */
  lowBalanceDefaults?: Record<Currency, number>;
}) {
  const { db, clock } = deps;
  const maxOps = deps.maxOps ?? 2000;
  interface Waiter {
    ops: CreditOp[];
    resolve(flushed: Flushed): void;
    reject(err: unknown): void;
  }
  // Four lanes measured best on 2 cores (bench): 2 left batches waiting on one another, 8 made single events' transactions too small.
  const lanes = Array.from({ length: deps.lanes ?? 4 }, () => ({ queue: [] as Waiter[], running: false }));
  /** Transactions run and ops applied, for tests and the benchmark's notes. */
  const stats = { transactions: 0, events: 0 };

  function laneOf(accountId: string): number {
    let h = 0;
    for (let i = 0; i < accountId.length; i++) h = (h * 31 + accountId.charCodeAt(i)) | 0;
    return Math.abs(h) % lanes.length;
  }

  /** Applies the ops (all of accounts the caller may see); resolves once committed. */
  async function submit(ops: CreditOp[]): Promise<Flushed> {
    const byLane = new Map<number, number[]>();
    ops.forEach((op, i) => {
      const lane = laneOf(accountOf(op));
      const list = byLane.get(lane);
      if (list) list.push(i);
      else byLane.set(lane, [i]);
    });
    const parts = await Promise.all([...byLane].map(async ([lane, indices]) => ({ indices, flushed: await enqueue(lane, indices.map((i) => ops[i]!)) })));
    if (parts.length === 1) return parts[0]!.flushed;
    const merged: Flushed = { results: new Array<OpResult>(ops.length), balances: new Map() };
    for (const { indices, flushed } of parts) {
      indices.forEach((original, j) => (merged.results[original] = flushed.results[j]!));
      for (const [k, v] of flushed.balances) merged.balances.set(k, v);
    }
    return merged;
  }

  function enqueue(index: number, ops: CreditOp[]): Promise<Flushed> {
    const lane = lanes[index]!;
    return new Promise<Flushed>((resolve, reject) => {
      lane.queue.push({ ops, resolve, reject });
      if (!lane.running) void drain(lane);
    });
  }

  async function drain(lane: (typeof lanes)[number]) {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const taken: Waiter[] = [];
        let count = 0;
        while (lane.queue.length > 0 && (taken.length === 0 || count + lane.queue[0]!.ops.length <= maxOps)) {
          const waiter = lane.queue.shift()!;
          taken.push(waiter);
          count += waiter.ops.length;
        }
        try {
          const flushed = await flush(taken.flatMap((w) => w.ops));
          let offset = 0;
          for (const w of taken) {
            const results = flushed.results.slice(offset, (offset += w.ops.length));
            const balances = new Map(w.ops.map((op) => [accountOf(op), flushed.balances.get(accountOf(op))!] as const).filter(([, b]) => b));
            w.resolve({ results, balances });
          }
        } catch (err) {
          if (taken.length === 1) {
            taken[0]!.reject(err);
            continue;
          }
          // One caller's ops must not fail another's: run each caller on its own.
          for (const w of taken) await flush(w.ops).then(w.resolve, w.reject);
        }
      }
    } finally {
      lane.running = false;
    }
  }

  /** One transaction: lock the accounts in id order, read them and the holds named, apply the ops in order, write it all set-based. */
  async function flush(ops: CreditOp[]): Promise<Flushed> {
    const accountIds = [...new Set(ops.map(accountOf))].sort();
    stats.transactions++;
    stats.events += ops.length;
    return db.transaction(async (tx) => {
      // Lock first, read after: a statement that waits for a row lock re-reads the locked row
      // but not the rows it joined, so a balance read with the lock could predate the holder's
      // commit. The read below is a new statement, which sees everything committed before it.
      await executePrepared(tx, 'usage_lock_accounts', sql`select id from accounts where id = any(${param(accountIds)}::text[]) order by id for update`);
      const locked = await executePrepared<LockedAccount>(
        tx,
        'credits_read_accounts',
        sql`
          select a.id, a.status, a.currency, coalesce(b.balance, 0) as balance, coalesce(b.held, 0) as held, c.frozen_time,
            pp.pulse_seconds, pp.per_pulse_rate, pp.per_sms_rate, al.low_balance_threshold, al.low_balance_alerted_at
          from accounts a
          left join credit_balances b on b.account_id = a.id
          left join plan_prices pp on pp.plan_id = a.plan_id and pp.currency = a.currency
          left join test_clocks c on c.id = a.test_clock_id
          left join credit_alerts al on al.account_id = a.id
          where a.id = any(${param(accountIds)}::text[])`,
      );
      const accounts = new Map(
        locked.map((a) => {
          const rates: Rates | null =
            a.pulse_seconds === null ? null : { pulseSeconds: a.pulse_seconds, perPulseRate: Number(a.per_pulse_rate), perSmsRate: Number(a.per_sms_rate) };
          const now = a.frozen_time === null ? clock.now() : new Date(a.frozen_time);
          const balance = Number(a.balance);
          const held = Number(a.held);
          const lowLine = a.low_balance_threshold !== null ? Number(a.low_balance_threshold) : (deps.lowBalanceDefaults?.[a.currency] ?? null);
          const account = { id: a.id, status: a.status, currency: a.currency, rates, now, balance, held, startBalance: balance, startHeld: held, lowLine, lowAlerted: a.low_balance_alerted_at !== null };
          return [a.id, account] as [string, typeof account];
        }),
      );
      const known = ops.filter((op) => accounts.has(accountOf(op)));
      const usageOps = known.filter((op): op is Extract<CreditOp, { kind: 'usage' }> => op.kind === 'usage');
      const seen = usageOps.length
        ? // Not prepared: a plan cached while usage_events was small (a seq scan) would outlive its growth.
          (
            (await tx.execute(sql`
              select u.account_id, u.id, u.status, u.units, u.amount, u.reason, u.hold_id, u.shortfall
              from usage_events u
              join unnest(${param(usageOps.map((op) => op.event.accountId))}::text[], ${param(usageOps.map((op) => op.event.id))}::text[]) as k(account_id, id)
                on u.account_id = k.account_id and u.id = k.id`)) as unknown as {
              rows: Array<{ account_id: string; id: string; status: Result['status']; units: number; amount: string | number; reason: Result['reason']; hold_id: string | null; shortfall: string | number }>;
            }
          ).rows
        : [];

      // The holds the ops name: by id (extend, release, settle) or by the caller's reference (a new hold).
      const holdIds = known.flatMap((op) => (op.kind === 'extend' || op.kind === 'release' ? [op.holdId] : op.kind === 'usage' && op.event.holdId ? [op.event.holdId] : []));
      const refs = known.filter((op): op is Extract<CreditOp, { kind: 'hold' }> => op.kind === 'hold');
      const holdsById = new Map<string, Hold>();
      const holdsByRef = new Map<string, Hold>();
      if (holdIds.length || refs.length) {
        const rows = (
          (await tx.execute(sql`
            select * from credit_holds where id = any(${param(holdIds)}::text[])
            union
            select h.* from credit_holds h
            join unnest(${param(refs.map((r) => r.accountId))}::text[], ${param(refs.map((r) => r.reference))}::text[]) as k(account_id, reference)
              on h.account_id = k.account_id and h.reference = k.reference`)) as unknown as { rows: HoldRow[] }
        ).rows;
        for (const row of rows) {
          const hold = holdOf(row);
          holdsById.set(hold.id, hold);
          holdsByRef.set(keyOf(hold.accountId, hold.reference), hold);
        }
      }
      const changedHolds = new Map<string, Hold>();

      // The result each id got, from an earlier request or from its first occurrence here.
      const decided = new Map<string, Result>();
      for (const s of seen) {
        decided.set(keyOf(s.account_id, s.id), {
          id: s.id,
          accountId: s.account_id,
          status: s.status,
          units: s.units,
          amount: Number(s.amount),
          reason: s.reason,
          holdId: s.hold_id,
          shortfall: Number(s.shortfall),
          duplicate: false,
        });
      }
      const results: OpResult[] = [];

      const rows = {
        id: [] as string[], account: [] as string[], type: [] as string[], units: [] as number[], amount: [] as number[], status: [] as string[],
        reason: [] as (string | null)[], balanceAfter: [] as (number | null)[], at: [] as string[], holdId: [] as (string | null)[], shortfall: [] as number[],
      };
      const ledger = { account: [] as string[], amount: [] as number[], currency: [] as string[], balanceAfter: [] as number[], sourceKey: [] as string[], description: [] as string[], at: [] as string[] };
      for (const op of ops) {
        const account = accounts.get(accountOf(op));
        if (op.kind !== 'usage') {
          results.push(applyHoldOp(op, account));
          continue;
        }
        const event = op.event;
        const key = keyOf(event.accountId, event.id);
        if (!account) {
          results.push({ kind: 'usage', result: { id: event.id, accountId: event.accountId, status: 'rejected', units: 0, amount: 0, reason: 'account_not_found', holdId: null, shortfall: 0, duplicate: false } });
          continue;
        }
        const previous = decided.get(key);
        if (previous) {
          // Rated before, or earlier in this very transaction (a retry racing its original).
          results.push({ kind: 'usage', result: { ...previous, duplicate: true } });
          continue;
        }
        const reason = account.status === 'limited' ? 'account_limited' : !account.rates ? 'not_billable' : null;
        const priced = account.rates ? rate(event, account.rates) : { units: 0, amount: 0 };
        // The hold it names, if it is this account's and still active: freed now, its credits available to this event.
        // Only this account's hold, of the same kind (a call's hold for a call record, an SMS's for an SMS).
        const candidate = event.holdId ? holdsById.get(event.holdId) : undefined;
        const named = candidate && candidate.accountId === event.accountId && candidate.action === (event.type === 'voice_call' ? 'outbound_call' : 'outbound_sms') ? candidate : undefined;
        if (named) lapse(named, account);
        const hold = named && named.status === 'active' ? named : null;
        const at = account.now.toISOString();
        if (hold) {
          account.held -= hold.amount;
          changedHolds.set(hold.id, hold);
        }
        let debit = 0;
        let shortfall = 0;
        let debited = false;
        if (reason === null) {
          const available = account.balance - account.held;
          if (hold) {
            ({ debit, shortfall } = settlement(priced.amount, available));
            debited = true;
          } else if (priced.amount <= available) {
            debit = priced.amount;
            debited = true;
          }
        }
        if (hold) {
          Object.assign(hold, { status: debited ? 'settled' : 'released', usageEventId: event.id, settledAmount: debit, updatedAt: account.now });
        }
        if (debited) {
          account.balance -= debit;
          if (debit > 0) {
            ledger.account.push(event.accountId);
            ledger.amount.push(-debit);
            ledger.currency.push(account.currency);
            ledger.balanceAfter.push(account.balance);
            ledger.sourceKey.push(`usage:${event.accountId}:${event.id}`);
            ledger.description.push(`${event.type}, ${priced.units} ${event.type === 'sms' ? 'segment' : 'pulse'}${priced.units === 1 ? '' : 's'}${shortfall > 0 ? `, ${shortfall} not covered` : ''}`);
            ledger.at.push(at);
          }
        }
        const finalReason = debited ? null : (reason ?? 'insufficient_credits');
        const amount = debited ? debit : priced.amount;
        rows.id.push(event.id);
        rows.account.push(event.accountId);
        rows.type.push(event.type);
        rows.units.push(priced.units);
        rows.amount.push(amount);
        rows.status.push(debited ? 'debited' : 'rejected');
        rows.reason.push(finalReason);
        rows.balanceAfter.push(debited ? account.balance : null);
        rows.at.push(at);
        rows.holdId.push(hold?.id ?? null);
        rows.shortfall.push(shortfall);
        const result: Result = {
          id: event.id,
          accountId: event.accountId,
          status: debited ? 'debited' : 'rejected',
          units: priced.units,
          amount,
          reason: finalReason,
          holdId: hold?.id ?? null,
          shortfall,
          duplicate: false,
        };
        decided.set(key, result);
        results.push({ kind: 'usage', result });
      }

      /** A hold whose time ran out before a worker freed it ends now: nothing may extend or spend it any more. */
      function lapse(hold: Hold, account: { now: Date; held: number }): boolean {
        if (hold.status !== 'active' || hold.expiresAt > account.now) return false;
        account.held -= hold.amount;
        Object.assign(hold, { status: 'expired', updatedAt: account.now });
        changedHolds.set(hold.id, hold);
        return true;
      }

      function applyHoldOp(op: Exclude<CreditOp, { kind: 'usage' }>, account: typeof accounts extends Map<string, infer A> ? A | undefined : never): OpResult {
        const refuse = (refused: HoldRefusal, hold: Hold | null = null): OpResult => ({ kind: 'hold', hold, refused, duplicate: false });
        if (!account) return refuse('hold_not_found');
        const now = account.now;
        const available = () => account.balance - account.held;
        if (op.kind === 'hold') {
          const existing = holdsByRef.get(keyOf(op.accountId, op.reference));
          if (existing) {
            // A retry carries the same call; another call under the same reference is the caller's bug, not a retry.
            if (existing.action !== op.action || existing.destination !== op.destination) return refuse('hold_reference_reused', existing);
            lapse(existing, account);
            return { kind: 'hold', hold: existing, refused: null, duplicate: true };
          }
          if (account.status === 'limited') return refuse('account_limited');
          const unitAmount = unitAmountOf(op.action, account.rates);
          const amount = unitAmount * op.units;
          if (amount > available()) return refuse('insufficient_credits');
          const hold: Hold = {
            id: newId('hold', now),
            accountId: account.id,
            reference: op.reference,
            action: op.action,
            destination: op.destination,
            units: op.units,
            unitAmount,
            amount,
            currency: account.currency,
            status: 'active',
            ttlSeconds: op.ttlSeconds,
            expiresAt: new Date(now.getTime() + op.ttlSeconds * 1000),
            usageEventId: null,
            settledAmount: null,
            createdAt: now,
            updatedAt: now,
          };
          account.held += amount;
          holdsById.set(hold.id, hold);
          holdsByRef.set(keyOf(hold.accountId, hold.reference), hold);
          changedHolds.set(hold.id, hold);
          return { kind: 'hold', hold, refused: null, duplicate: false };
        }
        const hold = holdsById.get(op.holdId);
        if (!hold || hold.accountId !== op.accountId) return refuse('hold_not_found');
        const lapsed = lapse(hold, account);
        if (op.kind === 'release') {
          if (lapsed) return { kind: 'hold', hold, refused: null, duplicate: false };
          // Releasing what has ended already answers it as it is; an expiry the caller extended meanwhile is no longer due.
          if (hold.status !== 'active' || (op.expire && hold.expiresAt > now)) return { kind: 'hold', hold, refused: null, duplicate: hold.status !== 'active' };
          account.held -= hold.amount;
          Object.assign(hold, { status: op.expire ? 'expired' : 'released', updatedAt: now });
          changedHolds.set(hold.id, hold);
          return { kind: 'hold', hold, refused: null, duplicate: false };
        }
        if (hold.status !== 'active') return refuse('hold_not_active', hold);
        if (account.status === 'limited') return refuse('account_limited', hold);
        const add = hold.unitAmount * op.units;
        if (add > available()) return refuse('insufficient_credits', hold);
        account.held += add;
        Object.assign(hold, { units: hold.units + op.units, amount: hold.amount + add, expiresAt: extendedExpiry(hold.expiresAt, now, op.ttlSeconds ?? hold.ttlSeconds), updatedAt: now });
        changedHolds.set(hold.id, hold);
        return { kind: 'hold', hold, refused: null, duplicate: false };
      }

      const moved = [...accounts.values()].filter((a) => a.balance !== a.startBalance || a.held !== a.startHeld);
      const holds = [...changedHolds.values()];
      if (rows.id.length > 0 || moved.length > 0 || holds.length > 0) {
        const crossed = await executePrepared<{ account_id: string; threshold: string | number }>(
          tx,
          'credits_write',
          sql`
            with ev as (
              insert into usage_events (id, account_id, type, units, amount, status, reason, balance_after, created_at, hold_id, shortfall)
              select * from unnest(${param(rows.id)}::text[], ${param(rows.account)}::text[], ${param(rows.type)}::text[], ${param(rows.units)}::int[],
                ${param(rows.amount)}::bigint[], ${param(rows.status)}::text[], ${param(rows.reason)}::text[], ${param(rows.balanceAfter)}::bigint[],
                ${param(rows.at)}::timestamptz[], ${param(rows.holdId)}::text[], ${param(rows.shortfall)}::bigint[])
            ), le as (
              insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
              select l.account_id, 'usage', l.amount, l.currency::currency, l.balance_after, l.source_key, l.description, l.created_at
              from unnest(${param(ledger.account)}::text[], ${param(ledger.amount)}::bigint[], ${param(ledger.currency)}::text[], ${param(ledger.balanceAfter)}::bigint[],
                ${param(ledger.sourceKey)}::text[], ${param(ledger.description)}::text[], ${param(ledger.at)}::timestamptz[])
                as l(account_id, amount, currency, balance_after, source_key, description, created_at)
            ), ho as (
              insert into credit_holds (id, account_id, reference, action, destination, units, unit_amount, amount, currency, status, ttl_seconds, expires_at,
                usage_event_id, settled_amount, created_at, updated_at)
              select h.id, h.account_id, h.reference, h.action, h.destination, h.units, h.unit_amount, h.amount, h.currency::currency, h.status, h.ttl_seconds,
                h.expires_at, h.usage_event_id, h.settled_amount, h.created_at, h.updated_at
              from unnest(${param(holds.map((h) => h.id))}::text[], ${param(holds.map((h) => h.accountId))}::text[], ${param(holds.map((h) => h.reference))}::text[],
                ${param(holds.map((h) => h.action))}::text[], ${param(holds.map((h) => h.destination))}::text[], ${param(holds.map((h) => h.units))}::int[],
                ${param(holds.map((h) => h.unitAmount))}::bigint[], ${param(holds.map((h) => h.amount))}::bigint[], ${param(holds.map((h) => h.currency))}::text[],
                ${param(holds.map((h) => h.status))}::text[], ${param(holds.map((h) => h.ttlSeconds))}::int[], ${param(holds.map((h) => h.expiresAt.toISOString()))}::timestamptz[],
                ${param(holds.map((h) => h.usageEventId))}::text[], ${param(holds.map((h) => h.settledAmount))}::bigint[],
                ${param(holds.map((h) => h.createdAt.toISOString()))}::timestamptz[], ${param(holds.map((h) => h.updatedAt.toISOString()))}::timestamptz[])
                as h(id, account_id, reference, action, destination, units, unit_amount, amount, currency, status, ttl_seconds, expires_at, usage_event_id, settled_amount, created_at, updated_at)
              on conflict (id) do update set units = excluded.units, amount = excluded.amount, status = excluded.status, expires_at = excluded.expires_at,
                usage_event_id = excluded.usage_event_id, settled_amount = excluded.settled_amount, updated_at = excluded.updated_at
            ), moved as (
              select * from unnest(${param(moved.map((a) => a.id))}::text[], ${param(moved.map((a) => a.balance))}::bigint[], ${param(moved.map((a) => a.held))}::bigint[],
                ${param(moved.map((a) => a.now.toISOString()))}::timestamptz[])
                as m(account_id, balance, held, at)
            ), bal as (
              update credit_balances b set balance = m.balance, held = m.held, updated_at = m.at from moved m where b.account_id = m.account_id
            )
            -- Available below the threshold: ask for one recharge (the scheduler runs it; later debits see it asked).
            update auto_recharge_settings r set next_attempt_at = m.at
            from moved m
            where r.account_id = m.account_id and r.enabled and r.next_attempt_at is null and r.threshold > m.balance - m.held
            returning r.account_id, r.threshold`,
        );
        const events: NewEvent[] = [];
        for (const c of crossed) {
          const account = accounts.get(c.account_id)!;
          events.push({ type: 'credits.low', accountId: account.id, payload: { accountId: account.id, balance: account.balance - account.held, threshold: Number(c.threshold), currency: account.currency } });
        }
        // Available crossed below the account's low-balance line: one alert, until credits lift it back.
        const low = moved.filter((a) => a.lowLine !== null && !a.lowAlerted && a.balance - a.held < a.lowLine);
        if (low.length > 0) {
          await tx.execute(sql`
            insert into credit_alerts (account_id, low_balance_alerted_at, low_balance_alert_threshold, updated_at)
            select * from unnest(${param(low.map((a) => a.id))}::text[], ${param(low.map((a) => a.now.toISOString()))}::timestamptz[], ${param(low.map((a) => a.lowLine!))}::bigint[],
              ${param(low.map((a) => a.now.toISOString()))}::timestamptz[])
            on conflict (account_id) do update set low_balance_alerted_at = excluded.low_balance_alerted_at,
              low_balance_alert_threshold = excluded.low_balance_alert_threshold, updated_at = excluded.updated_at`);
          for (const a of low) {
            a.lowAlerted = true;
            events.push({
              type: 'credits.low_balance',
              accountId: a.id,
              payload: { accountId: a.id, balance: a.balance, held: a.held, available: a.balance - a.held, threshold: a.lowLine!, currency: a.currency },
            });
          }
        }
        // Each event at its account's time (a test clock's, or now).
        const byTime = new Map<number, NewEvent[]>();
        for (const e of events) {
          const at = accounts.get(e.accountId!)!.now.getTime();
          byTime.set(at, [...(byTime.get(at) ?? []), e]);
        }
        for (const [at, group] of byTime) await appendEvents(tx, new Date(at), group);
      }
      const balances = new Map([...accounts.values()].map((a) => [a.id, { currency: a.currency, balance: a.balance, held: a.held }]));
      return { results, balances };
    });
  }

  /** Rates and debits usage events; each answer is the event's result. */
  async function submitUsage(events: UsageEvent[]): Promise<{ results: Result[]; balances: Map<string, Balance> }> {
    const flushed = await submit(events.map((event) => ({ kind: 'usage', event })));
    return { results: flushed.results.map((r) => (r as Extract<OpResult, { kind: 'usage' }>).result), balances: flushed.balances };
  }

  return { submit, submitUsage, stats: () => ({ ...stats }) };
}

export type CreditCommitter = ReturnType<typeof createCreditCommitter>;
