import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { autoRechargeSettings, creditAlerts, creditLedger } from '../../db/schema/index.js';
import type { Currency } from '../../lib/money.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { page } from '../../lib/pagination.js';
import * as accountsRepo from '../accounts/repo.js';
import { appendEvents } from '../events/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { createCreditCommitter, type Balance } from './committer.js';
import * as repo from './repo.js';
import type { UsageBatch, UsageResult } from './schemas.js';

type Viewer = { accountId: string | null };
type UsageEvent = UsageBatch['events'][number];
type Result = UsageResult['results'][number];

/**
 * The credit ledger. Every write of a balance locks the account row first and writes the
 * ledger entries in the same transaction, so the balance always equals the sum of entries.
 */
export function createCreditsService(deps: {
  db: Db;
  clock: Clock;
  usageLanes?: number;
  /** Low-balance lines of accounts without their own, per currency; and the depletion forecast's horizon. */
  alerts?: { lowBalance: Record<Currency, number>; forecastHours: number };
  /** Told once an adjustment is committed: this process's caches drop the account. (Usage tells them the balance instead: rateUsage answers it.) */
  accountChanged: (accountId: string) => void;
}) {
  const { db, clock } = deps;
  const committer = createCreditCommitter({ db, clock, lanes: deps.usageLanes, lowBalanceDefaults: deps.alerts?.lowBalance });
  const alertDefaults = deps.alerts ?? { lowBalance: { INR: 50_000, USD: 500 }, forecastHours: 168 };

  async function mustFind(tx: Db, accountId: string, opts: { forUpdate?: boolean } = {}) {
    const account = await accountsRepo.findAccount(tx, accountId, opts);
    if (!account) throw new AppError('account_not_found', `No account ${accountId}`);
    return account;
  }

  async function getCredits(accountId: string, tx: Db = db) {
    const account = await mustFind(tx, accountId);
    const [settings] = await tx.select().from(autoRechargeSettings).where(eq(autoRechargeSettings.accountId, accountId));
    const [alerts] = await tx.select().from(creditAlerts).where(eq(creditAlerts.accountId, accountId));
    const { balance, held } = await repo.balanceOf(tx, accountId);
    return {
      accountId,
      currency: account.currency,
      balance,
      held,
      available: balance - held,
      autoRecharge: settings ? { enabled: settings.enabled, threshold: settings.threshold, amount: settings.amount } : null,
      alerts: {
        lowBalanceThreshold: alerts?.lowBalanceThreshold ?? alertDefaults.lowBalance[account.currency],
        forecastHorizonHours: alerts?.forecastHorizonHours ?? alertDefaults.forecastHours,
        lowBalanceAlerted: alerts?.lowBalanceAlertedAt != null,
        forecastAlerted: alerts?.forecastAlertedAt != null,
      },
    };
  }

  /**
   * The account's own alert lines (null: the defaults). A line moved above the available
   * balance alerts at the next debit; an alert already out is armed again when its line moves.
   */
  async function setAlerts(accountId: string, input: { lowBalanceThreshold: number | null; forecastHorizonHours: number | null }) {
    return db.transaction(async (tx) => {
      const account = await mustFind(tx, accountId);
      const now = await nowForAccount(tx, account, clock);
      const row = { accountId, lowBalanceThreshold: input.lowBalanceThreshold, forecastHorizonHours: input.forecastHorizonHours, updatedAt: now };
      await tx
        .insert(creditAlerts)
        .values(row)
        .onConflictDoUpdate({
          target: creditAlerts.accountId,
          set: {
            ...row,
            lowBalanceAlertedAt: sql`case when ${creditAlerts.lowBalanceThreshold} is not distinct from ${input.lowBalanceThreshold}::bigint then ${creditAlerts.lowBalanceAlertedAt} end`,
            forecastAlertedAt: sql`case when ${creditAlerts.forecastHorizonHours} is not distinct from ${input.forecastHorizonHours}::int then ${creditAlerts.forecastAlertedAt} end`,
          },
        });
      return (await getCredits(accountId, tx)).alerts;
    });
  }

  /** Newest first. */
  async function listLedger(accountId: string, opts: { before?: string; limit: number }) {
    await mustFind(db, accountId);
    const before = opts.before === undefined ? undefined : Number(opts.before);
    if (before !== undefined && !Number.isSafeInteger(before)) throw new AppError('validation_failed', 'cursor is not one this API returned');
    const rows = await db
      .select()
      .from(creditLedger)
      .where(and(eq(creditLedger.accountId, accountId), before !== undefined ? lt(creditLedger.id, before) : undefined))
      .orderBy(desc(creditLedger.id))
      .limit(opts.limit + 1);
    return page(rows, opts.limit, (r) => String(r.id));
  }

  /** An ops correction: a new ledger entry with its reason, never an edit. */
  async function adjust(accountId: string, input: { amount: number; reason: string }, actor: { keyId: string }, idempotencyKey?: string) {
    // The same key makes the same ledger entry: even a retry that took over a dead request's key
    // meets the unique source key instead of adjusting twice.
    const sourceKey = idempotencyKey ? `adjustment:${actor.keyId}:${idempotencyKey}` : null;
    if (sourceKey) {
      const [done] = await db.select({ id: creditLedger.id }).from(creditLedger).where(eq(creditLedger.sourceKey, sourceKey));
      if (done) return getCredits(accountId);
    }
    const adjusted = await db.transaction(async (tx) => {
      const account = await mustFind(tx, accountId, { forUpdate: true });
      const now = await nowForAccount(tx, account, clock);
      const { balance, held } = await repo.balanceOf(tx, accountId);
      if (balance - held + input.amount < 0) {
        throw new AppError('insufficient_credits', `${balance - held} is available (balance ${balance}, held ${held}); a debit of ${-input.amount} would take more`, { balance, held });
      }
      const id = newId('adj', now);
      await repo.applyEntry(tx, {
        accountId,
        currency: account.currency,
        amount: input.amount,
        kind: 'adjustment',
        sourceKey: sourceKey ?? `adjustment:${id}`,
        description: `${input.reason} (by ${actor.keyId})`,
        at: now,
      });
      await appendEvents(tx, now, [
        { type: 'credits.adjusted', accountId, payload: { accountId, adjustmentId: id, amount: input.amount, reason: input.reason, by: actor.keyId } },
      ]);
      if (input.amount < 0) await repo.alertIfLow(tx, account, alertDefaults.lowBalance[account.currency], now);
      return getCredits(accountId, tx);
    });
    deps.accountChanged(accountId);
    return adjusted;
  }



  /**
   * Rates a batch of usage events and debits each once, through the group commit
   * (usage.ts): concurrent batches for one account share transactions instead of queueing
   * on its row lock, and an id already rated answers its first result without a second debit.
   */
  async function rateUsage(batch: UsageBatch, viewer: Viewer): Promise<UsageResult> {
    const visible = viewer.accountId ? batch.events.filter((e) => e.accountId === viewer.accountId) : batch.events;
    const flushed = visible.length ? await committer.submitUsage(visible) : { results: [], balances: new Map<string, Balance>() };
    let next = 0;
    const results = batch.events.map((e) => (viewer.accountId && e.accountId !== viewer.accountId ? rejected(e, 'account_not_found') : flushed.results[next++]!));
    const balances = [...flushed.balances]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([accountId, b]) => ({ accountId, currency: b.currency, balance: b.balance, held: b.held, available: b.balance - b.held }));
    return { results, balances };
  }

  /**
   * The ledger's invariants, for one account or all: balance = sum of entries (with what
   * retention carried of dropped months), never negative, each entry's running balance consistent, one credit per successful payment
   * that bought credits, and no such payment without its credit.
   */
  async function checkInvariants(accountId?: string) {
    const only = accountId ? sql`and a.id = ${accountId}` : sql``;
    const rows = await db.execute(sql`
      select a.id as account_id,
        coalesce(b.balance, 0) as balance, coalesce(b.held, 0) as held,
        coalesce((select sum(h.amount) from credit_holds h where h.account_id = a.id and h.status = 'active'), 0) as holds_sum,
        (select count(*) from credit_holds h where h.account_id = a.id and h.status = 'settled' and h.updated_at >= coalesce(c.through, '-infinity')
           and (select count(*) from credit_ledger l where l.source_key = 'usage:' || h.account_id || ':' || h.usage_event_id) <> (case when h.settled_amount > 0 then 1 else 0 end)) as holds_misdebited,
        coalesce(c.amount, 0) + coalesce((select sum(l.amount) from credit_ledger l where l.account_id = a.id), 0) as ledger_sum,
        (select l.balance_after from credit_ledger l where l.account_id = a.id order by l.id desc limit 1) as last_balance_after,
        (select count(*) from payments p
           where p.account_id = a.id and p.purpose in ('upgrade', 'purchase', 'recharge') and p.status = 'succeeded' and p.created_at >= coalesce(c.through, '-infinity')
             and coalesce((p.request->>'initialCredits')::bigint, (p.request->>'credits')::bigint, 0) > 0
             and not exists (select 1 from credit_ledger l where l.source_key = 'payment:' || p.id)) as payments_without_credit,
        (select count(*) from credit_ledger l
           where l.account_id = a.id and l.source_key like 'payment:%'
             and not exists (select 1 from payments p where 'payment:' || p.id = l.source_key and p.status = 'succeeded')) as credits_without_payment
      from accounts a left join credit_balances b on b.account_id = a.id left join credit_ledger_carried c on c.account_id = a.id
      where true ${only}`);
    const list = (rows as unknown as { rows: Array<Record<string, string | null>> }).rows;
    const violations: Array<{ accountId: string; rule: string; detail: string }> = [];
    for (const r of list) {
      const id = r.account_id!;
      const balance = Number(r.balance);
      if (balance !== Number(r.ledger_sum)) violations.push({ accountId: id, rule: 'balance_equals_ledger', detail: `balance ${balance}, ledger sum ${r.ledger_sum}` });
      if (balance < 0) violations.push({ accountId: id, rule: 'non_negative', detail: `balance ${balance}` });
      const held = Number(r.held);
      if (held !== Number(r.holds_sum)) violations.push({ accountId: id, rule: 'held_equals_holds', detail: `held ${held}, active holds ${r.holds_sum}` });
      if (held > balance || held < 0) violations.push({ accountId: id, rule: 'held_within_balance', detail: `held ${held}, balance ${balance}` });
      if (Number(r.holds_misdebited) > 0) violations.push({ accountId: id, rule: 'hold_debited_once', detail: `${r.holds_misdebited} settled hold(s) without exactly one debit` });
      if (r.last_balance_after !== null && Number(r.last_balance_after) !== balance) {
        violations.push({ accountId: id, rule: 'running_balance', detail: `last entry says ${r.last_balance_after}, balance ${balance}` });
      }
      if (Number(r.payments_without_credit) > 0) violations.push({ accountId: id, rule: 'payment_credited', detail: `${r.payments_without_credit} paid purchase(s) without a ledger credit` });
      if (Number(r.credits_without_payment) > 0) violations.push({ accountId: id, rule: 'credit_has_payment', detail: `${r.credits_without_payment} credit(s) without a successful payment` });
    }
    return { accountsChecked: list.length, violations };
  }

  return { getCredits, setAlerts, listLedger, adjust, rateUsage, checkInvariants, committer, usageStats: committer.stats };
}

export type CreditsService = ReturnType<typeof createCreditsService>;

function rejected(event: UsageEvent, reason: NonNullable<Result['reason']>): Result {
  return { id: event.id, accountId: event.accountId, status: 'rejected', units: 0, amount: 0, reason, holdId: null, shortfall: 0, duplicate: false };
}
