import type { Db } from '../../db/client.js';
import { newId } from '../../lib/ids.js';
import { issueInvoices, type InvoiceEvent, type InvoiceToIssue } from '../billing/issue.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents, checkEvents, reserveOutboxIds, type NewEvent } from '../events/repo.js';
import type { ChargeRequest, ChargeResult } from '../payments/provider.js';
import type { OpenPayment } from '../payments/service.js';
import { batchRoute, planRenewal, renewalEvents, renewalInvoice, type RenewalRules } from './domain.js';
import * as repo from './repo.js';
import type { RenewalDeps } from './service.js';

export interface RenewalItem {
  subscriptionId: string;
  periodEnd: Date;
}

export interface ItemOutcome {
  subscriptionId: string;
  outcome: 'renewed' | 'cancelled' | 'invoiced' | 'skipped' | 'failed';
  path: 'batch' | 'single';
}

/** A renewal issued by a batch, waiting for its charge. */
interface Issued {
  accountId: string;
  subscriptionId: string;
  invoiceId: string;
  number: string;
  total: number;
  charge: ChargeRequest;
}

interface BatchStep {
  issued: Issued[];
  single: RenewalItem[];
  skipped: string[];
}

/** The single-subscription steps the batch hands everything unusual to. */
export interface SingleRenewal {
  renew(subscriptionId: string, periodEnd: Date): Promise<'renewed' | 'cancelled' | 'invoiced' | 'skipped'>;
  settle(paymentId: string, result: ChargeResult): Promise<boolean>;
}

/** Single renewals run side by side from one batch: enough to overlap waits, few enough to share the pool. */
const SINGLE_CONCURRENCY = 4;

/**
 * Renewal waves, set-based: one transaction issues a whole batch (its invoices take
 * consecutive numbers with one counter update), one provider call charges it, one transaction
 * settles its successes. Only the plain case (see batchRoute) goes this way; the rest, and
 * every decline, goes through the single renewal unchanged. Exactly-once as there: each row
 * is re-checked under its lock, and the invoice of a period is unique per subscription.
 */
export function createBatchRenewals(deps: RenewalDeps, single: SingleRenewal) {
  const { db, clock, logger, payments } = deps;
  const rules: RenewalRules = { mandate: deps.mandate, taxation: deps.taxation, invoiceDueDays: deps.invoiceDueDays, dunningRetryDays: deps.dunningRetryDays };

  /** Renews the named periods: a batch for the plain ones, the single path for the rest. */
  async function renewMany(items: RenewalItem[]): Promise<ItemOutcome[]> {
    const wanted = new Map(items.map((i) => [i.subscriptionId, i.periodEnd]));
    const step = await db.transaction(async (tx) => {
      const locked = await repo.lockNamed(tx, [...wanted.keys()]);
      const found = new Set(locked.map((r) => r.sub.id));
      const step = await issueLocked(tx, locked.map((r) => ({ ...r, periodEnd: wanted.get(r.sub.id)! })), clock.now());
      step.skipped.push(...[...wanted.keys()].filter((id) => !found.has(id)));
      return step;
    });
    return finish(step);
  }

  /**
   * The worker's drain: claims due batchable renewals `batchSize` at a time (SKIP LOCKED, so
   * drains run side by side) until none is left, the time budget is spent, or the worker stops.
   */
  async function renewDue(opts: { batchSize?: number; budgetMs?: number; shouldStop?: () => boolean } = {}) {
    const { batchSize = 200, budgetMs = 30_000, shouldStop = () => false } = opts;
    const started = Date.now();
    // Handed to the single path in this drain: not claimed again if that left them due (an error).
    const passedOn = new Set<string>();
    const totals = { renewed: 0, single: 0, skipped: 0 };
    while (!shouldStop() && Date.now() - started < budgetMs) {
      let claimed: RenewalItem[] = [];
      let step: BatchStep;
      try {
        step = await db.transaction(async (tx) => {
          const now = clock.now();
          const locked = await repo.claimDue(tx, now, deps.mandate.noticeHours, batchSize, [...passedOn]);
          claimed = locked.map((r) => ({ subscriptionId: r.sub.id, periodEnd: r.sub.currentPeriodEnd }));
          return issueLocked(tx, locked.map((r) => ({ ...r, periodEnd: r.sub.currentPeriodEnd })), now);
        });
      } catch (err) {
        if (claimed.length === 0) throw err;
        // One bad row must not hold up the wave: this batch's rows go one by one instead.
        logger.error({ err, subscriptions: claimed.length }, 'batch renewal failed; renewing its subscriptions one by one');
        step = { issued: [], single: claimed, skipped: [] };
      }
      if (claimed.length === 0) break;
      for (const item of step.single) passedOn.add(item.subscriptionId);
      const outcomes = await finish(step);
      for (const o of outcomes) {
        if (o.path === 'single') totals.single++;
        else if (o.outcome === 'renewed') totals.renewed++;
        else totals.skipped++;
      }
    }
    return totals;
  }

  /** The batch path's part of locked rows: issues the plain ones, sorts out the rest. */
  async function issueLocked(tx: Db, locked: Array<repo.LockedRenewal & { periodEnd: Date }>, now: Date): Promise<BatchStep> {
    const step: BatchStep = { issued: [], single: [], skipped: [] };
    const plain = [];
    for (const row of locked) {
      const routed = batchRoute(row.sub, row.account, row.methodType, row.periodEnd, now);
      if (routed.route === 'skipped') step.skipped.push(row.sub.id);
      else if (routed.route === 'single') step.single.push({ subscriptionId: row.sub.id, periodEnd: row.periodEnd });
      else plain.push(row);
    }
    if (plain.length === 0) return step;

    const catalog = await catalogOf(tx, [...new Set(plain.map((p) => p.sub.planId))]);
    const invoices: Array<InvoiceToIssue & { id: string }> = [];
    const periods: repo.PeriodUpdate[] = [];
    const pending: Array<Omit<Issued, 'number'> & { created: NewEvent; after: NewEvent[] }> = [];
    const opened: OpenPayment[] = [];
    for (const { sub, account, methodType, methodReference, mandateMaxAmount, mandateValidUntil, periodEnd } of plain) {
      let plan;
      try {
        const method = { type: methodType!, mandateMaxAmount, mandateValidUntil };
        plan = planRenewal(sub, account, method, { plan: catalog.plans.get(sub.planId), prices: catalog.prices, cycle: catalog.cycles.get(sub.billingCycle) }, now, rules);
      } catch {
        // Not billable as it stands: the single path fails it the way it always has.
        step.single.push({ subscriptionId: sub.id, periodEnd });
        continue;
      }
      // Anything but a charge now (it waits for the customer, or for its notice): the single path.
      if (plan.collect !== 'charge_now') {
        step.single.push({ subscriptionId: sub.id, periodEnd });
        continue;
      }
      const invoiceId = newId('inv', now);
      const paymentId = newId('pay', now);
      invoices.push({ ...renewalInvoice(sub, account, plan, now), id: invoiceId });
      periods.push({ id: sub.id, planId: plan.planId, billingCycle: plan.cycleCode, whatsappAddon: plan.whatsappAddon, start: plan.start, end: plan.end, monthsElapsed: plan.monthsElapsed, noticeFor: plan.notice?.sentNow ? periodEnd : null });
      const payment: OpenPayment = {
        id: paymentId,
        accountId: account.id,
        purpose: 'renewal',
        amount: plan.priced.total,
        currency: plan.priced.currency,
        method: { id: sub.paymentMethodId, type: methodType! },
        invoiceId,
        request: { invoiceId },
        now,
      };
      opened.push(payment);
      // The single renewal's events, in its order: invoice.created (its number comes with the invoice), then the rest.
      const events = renewalEvents(sub, account, plan, { id: invoiceId, total: plan.priced.total, currency: plan.priced.currency });
      pending.push({
        accountId: account.id,
        subscriptionId: sub.id,
        invoiceId,
        total: plan.priced.total,
        charge: payments.chargeRequestOf({ ...payment, id: paymentId, invoiceId }, { type: methodType!, reference: methodReference }),
        created: events.created,
        after: [...events.before, ...events.after],
      });
    }
    if (pending.length === 0) return step;

    checkEvents(pending.map((p) => ({ ...p.created, payload: { ...p.created.payload, number: 'INV-0000-00-000000' } })));
    await payments.openMany(tx, opened);
    await repo.startNextPeriods(tx, periods, now);
    await repo.setAccountPlans(tx, periods.map((p, i) => ({ accountId: pending[i]!.accountId, planId: p.planId })), now);
    const ids = await reserveOutboxIds(tx, pending.reduce((n, p) => n + 1 + p.after.length, 0));
    let next = 0;
    const created: InvoiceEvent[] = [];
    const after: NewEvent[] = [];
    const afterIds: number[] = [];
    for (const p of pending) {
      created.push({ outboxId: ids[next++]!, eventId: newId('evt', now), type: p.created.type, accountId: p.accountId, payload: p.created.payload, createdAt: now });
      for (const e of p.after) {
        after.push(e);
        afterIds.push(ids[next++]!);
      }
    }
    await appendEvents(tx, now, after, afterIds);
    // Last: the year's invoice counter stays locked from here to the commit, serialising batches.
    const numbered = await issueInvoices(tx, invoices, created);
    step.issued = pending.map(({ created: _c, after: _a, ...p }, i) => ({ ...p, number: numbered[i]!.number }));
    return step;
  }

  async function catalogOf(tx: Db, planIds: string[]) {
    const found = await catalogRepo.findPlans(tx, planIds);
    const prices = await catalogRepo.pricesOf(tx, planIds);
    const cycles = await catalogRepo.listBillingCycles(tx);
    return { plans: new Map(found.map((p) => [p.id, p])), prices, cycles: new Map(cycles.map((c) => [c.code, c])) };
  }

  /** After the batch commits: the single path for its unusual items, then the charges. */
  async function finish(step: BatchStep): Promise<ItemOutcome[]> {
    const outcomes: ItemOutcome[] = step.skipped.map((id) => ({ subscriptionId: id, outcome: 'skipped', path: 'batch' }));
    await inLanes(step.single, SINGLE_CONCURRENCY, async (item) => {
      try {
        outcomes.push({ subscriptionId: item.subscriptionId, outcome: await single.renew(item.subscriptionId, item.periodEnd), path: 'single' });
      } catch (err) {
        logger.error({ err, subscriptionId: item.subscriptionId }, 'renewal failed');
        outcomes.push({ subscriptionId: item.subscriptionId, outcome: 'failed', path: 'single' });
      }
    });
    await chargeAndSettle(step.issued);
    outcomes.push(...step.issued.map((i) => ({ subscriptionId: i.subscriptionId, outcome: 'renewed' as const, path: 'batch' as const })));
    return outcomes;
  }

  /** One provider call for the batch; successes settle together, anything else one by one as always. */
  async function chargeAndSettle(issued: Issued[]): Promise<void> {
    if (issued.length === 0) return;
    const results = await payments.chargeMany(issued.map((i) => i.charge));
    const succeeded: Array<{ paymentId: string; accountId: string; reference: string }> = [];
    const others: Array<{ paymentId: string; result: ChargeResult }> = [];
    issued.forEach((item, i) => {
      const result = results[i]!;
      if (result.status === 'succeeded') succeeded.push({ paymentId: item.charge.idempotencyKey, accountId: item.accountId, reference: result.reference });
      else others.push({ paymentId: item.charge.idempotencyKey, result });
    });
    // A payment whose subscription is no longer simply active (a recovery, a cancellation) settles one by one.
    const passedOn = new Set(await payments.settleSucceededMany(succeeded));
    for (const s of succeeded) if (passedOn.has(s.paymentId)) others.push({ paymentId: s.paymentId, result: { status: 'succeeded', reference: s.reference } });
    await inLanes(others, SINGLE_CONCURRENCY, async ({ paymentId, result }) => {
      try {
        await single.settle(paymentId, result);
      } catch (err) {
        // Left processing: the reconciliation sweep settles it from the provider's record.
        logger.error({ err, paymentId }, 'could not settle renewal payment');
      }
    });
  }

  return { renewMany, renewDue, countDue: (limit: number) => repo.countDue(db, clock.now(), deps.mandate.noticeHours, limit) };
}

/** Runs `fn` over `items` with at most `lanes` at once. */
async function inLanes<T>(items: T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}

export type BatchRenewals = ReturnType<typeof createBatchRenewals>;
