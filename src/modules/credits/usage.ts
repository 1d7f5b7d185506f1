import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { executePrepared } from '../../db/prepared.js';
import type { Clock } from '../../lib/clock.js';
import type { Currency } from '../../lib/money.js';
import { appendEvents } from '../events/repo.js';
import { rate, type Rates } from './domain.js';
import type { UsageBatch, UsageResult } from './schemas.js';

type UsageEvent = UsageBatch['events'][number];
type Result = UsageResult['results'][number];

/** What a flush decided: each event's result, in the order given, and the balances it left. */
interface Flushed {
  results: Result[];
  balances: Map<string, { currency: Currency; balance: number }>;
}

const keyOf = (accountId: string, id: string) => `${accountId}\u0000${id}`;
const param = <T>(values: T[]) => sql.param(values);

interface LockedAccount {
  id: string;
  status: string;
  currency: Currency;
  balance: string | number;
  pulse_seconds: number | null;
  per_pulse_rate: string | number | null;
  per_sms_rate: string | number | null;
  frozen_time: string | Date | null;
}

/**
 * Group commit for usage. Events wait in a lane (an account always maps to the same lane);
 * while a lane's transaction runs, what arrives meanwhile queues up and goes in the lane's
 * next transaction, however many callers sent it. So 64 callers debiting one account make a
 * handful of transactions, not 64 queued on its row lock, and each caller still gets its own
 * events' results. Lanes never share an account, so they never wait on each other's locks;
 * another process's transactions do, and every transaction locks its accounts in id order.
 */
export function createUsageCommitter(deps: { db: Db; clock: Clock; lanes?: number; maxEvents?: number }) {
  const { db, clock } = deps;
  const maxEvents = deps.maxEvents ?? 2000;
  interface Waiter {
    events: UsageEvent[];
    resolve(flushed: Flushed): void;
    reject(err: unknown): void;
  }
  // Four lanes measured best on 2 cores (bench): 2 left batches waiting on one another, 8 made single events' transactions too small.
  const lanes = Array.from({ length: deps.lanes ?? 4 }, () => ({ queue: [] as Waiter[], running: false }));
  /** Transactions run and events rated, for tests and the benchmark's notes. */
  const stats = { transactions: 0, events: 0 };

  function laneOf(accountId: string): number {
    let h = 0;
    for (let i = 0; i < accountId.length; i++) h = (h * 31 + accountId.charCodeAt(i)) | 0;
    return Math.abs(h) % lanes.length;
  }

  /** Rates and debits the events (all of accounts the caller may see); resolves once committed. */
  async function submit(events: UsageEvent[]): Promise<Flushed> {
    const byLane = new Map<number, number[]>();
    events.forEach((event, i) => {
      const lane = laneOf(event.accountId);
      const list = byLane.get(lane);
      if (list) list.push(i);
      else byLane.set(lane, [i]);
    });
    const parts = await Promise.all([...byLane].map(async ([lane, indices]) => ({ indices, flushed: await enqueue(lane, indices.map((i) => events[i]!)) })));
    if (parts.length === 1) return parts[0]!.flushed;
    const merged: Flushed = { results: new Array<Result>(events.length), balances: new Map() };
    for (const { indices, flushed } of parts) {
      indices.forEach((original, j) => (merged.results[original] = flushed.results[j]!));
      for (const [k, v] of flushed.balances) merged.balances.set(k, v);
    }
    return merged;
  }

  function enqueue(index: number, events: UsageEvent[]): Promise<Flushed> {
    const lane = lanes[index]!;
    return new Promise<Flushed>((resolve, reject) => {
      lane.queue.push({ events, resolve, reject });
      if (!lane.running) void drain(lane);
    });
  }

  async function drain(lane: (typeof lanes)[number]) {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const taken: Waiter[] = [];
        let count = 0;
        while (lane.queue.length > 0 && (taken.length === 0 || count + lane.queue[0]!.events.length <= maxEvents)) {
          const waiter = lane.queue.shift()!;
          taken.push(waiter);
          count += waiter.events.length;
        }
        try {
          const flushed = await flush(taken.flatMap((w) => w.events));
          let offset = 0;
          for (const w of taken) {
            const results = flushed.results.slice(offset, (offset += w.events.length));
            const balances = new Map(w.events.map((e) => [e.accountId, flushed.balances.get(e.accountId)!] as const).filter(([, b]) => b));
            w.resolve({ results, balances });
          }
        } catch (err) {
          if (taken.length === 1) {
            taken[0]!.reject(err);
            continue;
          }
          // One caller's events must not fail another's: run each caller on its own.
          for (const w of taken) await flush(w.events).then(w.resolve, w.reject);
        }
      }
    } finally {
      lane.running = false;
    }
  }

  /** One transaction: lock the accounts in id order, read them, find ids already rated, rate the rest, write it all set-based. */
  async function flush(events: UsageEvent[]): Promise<Flushed> {
    const accountIds = [...new Set(events.map((e) => e.accountId))].sort();
    stats.transactions++;
    stats.events += events.length;
    return db.transaction(async (tx) => {
      // Lock first, read after: a statement that waits for a row lock re-reads the locked row
      // but not the rows it joined, so a balance read with the lock could predate the holder's
      // commit. The read below is a new statement, which sees everything committed before it.
      await executePrepared(tx, 'usage_lock_accounts', sql`select id from accounts where id = any(${param(accountIds)}::text[]) order by id for update`);
      const locked = await executePrepared<LockedAccount>(
        tx,
        'usage_read_accounts',
        sql`
          select a.id, a.status, a.currency, coalesce(b.balance, 0) as balance, c.frozen_time,
            pp.pulse_seconds, pp.per_pulse_rate, pp.per_sms_rate
          from accounts a
          left join credit_balances b on b.account_id = a.id
          left join plan_prices pp on pp.plan_id = a.plan_id and pp.currency = a.currency
          left join test_clocks c on c.id = a.test_clock_id
          where a.id = any(${param(accountIds)}::text[])`,
      );
      const accounts = new Map(
        locked.map((a) => {
          const rates: Rates | null =
            a.pulse_seconds === null ? null : { pulseSeconds: a.pulse_seconds, perPulseRate: Number(a.per_pulse_rate), perSmsRate: Number(a.per_sms_rate) };
          const now = a.frozen_time === null ? clock.now() : new Date(a.frozen_time);
          const account = { id: a.id, status: a.status, currency: a.currency, rates, now, balance: Number(a.balance), startBalance: Number(a.balance) };
          return [a.id, account] as [string, typeof account];
        }),
      );
      const known = events.filter((e) => accounts.has(e.accountId));
      const seen = known.length
        ? // Not prepared: a plan cached while usage_events was small (a seq scan) would outlive its growth.
          (
            (await tx.execute(sql`
              select u.account_id, u.id, u.status, u.units, u.amount, u.reason
              from usage_events u
              join unnest(${param(known.map((e) => e.accountId))}::text[], ${param(known.map((e) => e.id))}::text[]) as k(account_id, id)
                on u.account_id = k.account_id and u.id = k.id`)) as unknown as {
              rows: Array<{ account_id: string; id: string; status: Result['status']; units: number; amount: string | number; reason: Result['reason'] }>;
            }
          ).rows
        : [];
      // The result each id got, from an earlier request or from its first occurrence here.
      const decided = new Map<string, Result>();
      for (const s of seen) {
        decided.set(keyOf(s.account_id, s.id), { id: s.id, accountId: s.account_id, status: s.status, units: s.units, amount: Number(s.amount), reason: s.reason, duplicate: false });
      }
      const results: Result[] = [];

      const rows = { id: [] as string[], account: [] as string[], type: [] as string[], units: [] as number[], amount: [] as number[], status: [] as string[], reason: [] as (string | null)[], balanceAfter: [] as (number | null)[], at: [] as string[] };
      const ledger = { account: [] as string[], amount: [] as number[], currency: [] as string[], balanceAfter: [] as number[], sourceKey: [] as string[], description: [] as string[], at: [] as string[] };
      for (const event of events) {
        const key = keyOf(event.accountId, event.id);
        const account = accounts.get(event.accountId);
        if (!account) {
          results.push({ id: event.id, accountId: event.accountId, status: 'rejected', units: 0, amount: 0, reason: 'account_not_found', duplicate: false });
          continue;
        }
        const previous = decided.get(key);
        if (previous) {
          // Rated before, or earlier in this very transaction (a retry racing its original).
          results.push({ ...previous, duplicate: true });
          continue;
        }
        const reason = account.status === 'limited' ? 'account_limited' : !account.rates ? 'not_billable' : null;
        const priced = account.rates ? rate(event, account.rates) : { units: 0, amount: 0 };
        const debited = reason === null && priced.amount <= account.balance;
        const at = account.now.toISOString();
        if (debited) {
          account.balance -= priced.amount;
          if (priced.amount > 0) {
            ledger.account.push(event.accountId);
            ledger.amount.push(-priced.amount);
            ledger.currency.push(account.currency);
            ledger.balanceAfter.push(account.balance);
            ledger.sourceKey.push(`usage:${event.accountId}:${event.id}`);
            ledger.description.push(`${event.type}, ${priced.units} ${event.type === 'sms' ? 'segment' : 'pulse'}${priced.units === 1 ? '' : 's'}`);
            ledger.at.push(at);
          }
        }
        const finalReason = debited ? null : (reason ?? 'insufficient_credits');
        rows.id.push(event.id);
        rows.account.push(event.accountId);
        rows.type.push(event.type);
        rows.units.push(priced.units);
        rows.amount.push(priced.amount);
        rows.status.push(debited ? 'debited' : 'rejected');
        rows.reason.push(finalReason);
        rows.balanceAfter.push(debited ? account.balance : null);
        rows.at.push(at);
        const result: Result = { id: event.id, accountId: event.accountId, status: debited ? 'debited' : 'rejected', units: priced.units, amount: priced.amount, reason: finalReason, duplicate: false };
        decided.set(key, result);
        results.push(result);
      }

      const moved = [...accounts.values()].filter((a) => a.balance !== a.startBalance);
      if (rows.id.length > 0) {
        const crossed = await executePrepared<{ account_id: string; threshold: string | number }>(
          tx,
          'usage_write',
          sql`
            with ev as (
              insert into usage_events (id, account_id, type, units, amount, status, reason, balance_after, created_at)
              select * from unnest(${param(rows.id)}::text[], ${param(rows.account)}::text[], ${param(rows.type)}::text[], ${param(rows.units)}::int[],
                ${param(rows.amount)}::bigint[], ${param(rows.status)}::text[], ${param(rows.reason)}::text[], ${param(rows.balanceAfter)}::bigint[],
                ${param(rows.at)}::timestamptz[])
            ), le as (
              insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
              select l.account_id, 'usage', l.amount, l.currency::currency, l.balance_after, l.source_key, l.description, l.created_at
              from unnest(${param(ledger.account)}::text[], ${param(ledger.amount)}::bigint[], ${param(ledger.currency)}::text[], ${param(ledger.balanceAfter)}::bigint[],
                ${param(ledger.sourceKey)}::text[], ${param(ledger.description)}::text[], ${param(ledger.at)}::timestamptz[])
                as l(account_id, amount, currency, balance_after, source_key, description, created_at)
            ), moved as (
              select * from unnest(${param(moved.map((a) => a.id))}::text[], ${param(moved.map((a) => a.balance))}::bigint[], ${param(moved.map((a) => a.now.toISOString()))}::timestamptz[])
                as m(account_id, balance, at)
            ), bal as (
              update credit_balances b set balance = m.balance, updated_at = m.at from moved m where b.account_id = m.account_id
            )
            -- Below the threshold: ask for one recharge (the scheduler runs it; later debits see it asked).
            update auto_recharge_settings r set next_attempt_at = m.at
            from moved m
            where r.account_id = m.account_id and r.enabled and r.next_attempt_at is null and r.threshold > m.balance
            returning r.account_id, r.threshold`,
        );
        for (const c of crossed) {
          const account = accounts.get(c.account_id)!;
          await appendEvents(tx, account.now, [
            { type: 'credits.low', accountId: account.id, payload: { accountId: account.id, balance: account.balance, threshold: Number(c.threshold), currency: account.currency } },
          ]);
        }
      }
      const balances = new Map([...accounts.values()].map((a) => [a.id, { currency: a.currency, balance: a.balance }]));
      return { results, balances };
    });
  }

  return { submit, stats: () => ({ ...stats }) };
}

export type UsageCommitter = ReturnType<typeof createUsageCommitter>;
