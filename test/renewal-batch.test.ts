import t from 'tap';
import { createLogger } from '../src/lib/logger.js';
import { startWorkers } from '../src/workers.js';
import { approveKyc, scanKeys, setup, type TestContext } from './helper.js';

const START = new Date('2026-11-26T10:00:00Z');
const PERIOD_END = new Date('2026-12-26T10:00:00Z');
const DAY = 86_400_000;

interface Subscribed {
  accountId: string;
  subscriptionId: string;
}

/** A paid subscription (no test clock) made through the API at the context clock's time. */
async function subscribe(
  ctx: TestContext,
  opts: { country?: string; plan?: string; cycle?: string; method?: Record<string, string>; testClockId?: string } = {},
): Promise<Subscribed> {
  const country = opts.country ?? 'US';
  const body = { name: 'Acme', email: `a${Math.random()}@acme.example`, country, ...(opts.testClockId ? { testClockId: opts.testClockId } : {}) };
  const account = (await ctx.call('POST', '/v1/accounts', { body })).body;
  await approveKyc(ctx, account.id);
  const plan = opts.plan ?? 'plan_starter_v1';
  const minimum = (await ctx.call('GET', `/v1/plans/${plan}`)).body.prices.find((p: any) => p.currency === account.currency).minInitialCredits;
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: plan, billingCycle: opts.cycle ?? 'monthly', initialCredits: minimum, paymentMethod: opts.method ?? { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': `up-${account.id}` },
  });
  if (res.status !== 201) throw new Error(`upgrade: ${res.status} ${JSON.stringify(res.body)}`);
  return { accountId: account.id, subscriptionId: res.body.subscription.id };
}

const item = (s: Subscribed) => ({ subscriptionId: s.subscriptionId, periodEnd: PERIOD_END });

/**
 * Everything a renewal wrote for one account, with its own ids and numbers replaced by
 * names, so two accounts renewed by different paths can be compared field by field.
 */
async function renewalState(ctx: TestContext, s: Subscribed) {
  const invoices = (await ctx.query("select * from invoices where account_id = $1 and kind = 'renewal'", [s.accountId])).rows;
  const payments = (await ctx.query("select * from payments where account_id = $1 and purpose = 'renewal' order by id", [s.accountId])).rows;
  const [{ email }] = (await ctx.query('select email from accounts where id = $1', [s.accountId])).rows;
  const names = new Map<string, string>([
    [s.accountId, '<account>'],
    [email, '<email>'],
    [s.subscriptionId, '<subscription>'],
    ...payments.map((p: any) => [p.payment_method_id, '<method>'] as [string, string]),
    ...invoices.flatMap((i: any) => [[i.id, '<invoice>'], [i.number, '<number>']] as Array<[string, string]>),
    ...payments.map((p: any, n: number) => [p.id, `<payment ${n}>`] as [string, string]),
  ]);
  const scrub = (value: unknown): unknown => {
    if (typeof value === 'string') return names.get(value) ?? value;
    if (value instanceof Date) return value.toISOString();
    if (Array.isArray(value)) return value.map(scrub);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)]));
    return value;
  };
  const drop = (row: any, ...keys: string[]) => Object.fromEntries(Object.entries(row).filter(([k]) => !keys.includes(k)));
  const lines = (await ctx.query('select * from invoice_lines where invoice_id = any($1) order by position', [invoices.map((i: any) => i.id)])).rows;
  const charges = (await ctx.query('select amount, currency, method, outcome, failure_code from sandbox_charges where idempotency_key = any($1)', [payments.map((p: any) => p.id)])).rows;
  const events = (await ctx.query("select type, payload from outbox where account_id = $1 and created_at >= $2 order by id", [s.accountId, PERIOD_END])).rows;
  const [sub] = (await ctx.query('select * from subscriptions where id = $1', [s.subscriptionId])).rows;
  const [account] = (await ctx.query('select status, plan_id, past_due_since, updated_at from accounts where id = $1', [s.accountId])).rows;
  return scrub({
    invoices: invoices.map((i: any) => drop(i, 'sequence')),
    lines,
    // touched_at is wall-clock time of the last change: it differs between any two runs.
    payments: payments.map((p: any) => ({ ...drop(p, 'provider_reference', 'touched_at'), provider_reference: p.provider_reference ? 'set' : null })),
    charges,
    events,
    subscription: drop(sub, 'created_at', 'anchor_at', 'payment_method_id'),
    account,
  });
}

const counts = async (ctx: TestContext) =>
  (
    await ctx.query(`select
      (select count(*)::int from invoices where kind = 'renewal') as invoices,
      (select count(*)::int from payments where purpose = 'renewal') as payments,
      (select count(*)::int from sandbox_charges s join payments p on p.id = s.idempotency_key where p.purpose = 'renewal') as charges,
      (select count(*)::int from outbox where type in ('invoice.created', 'subscription.renewed', 'payment.succeeded', 'invoice.paid') and created_at >= '${PERIOD_END.toISOString()}') as events`)
  ).rows[0];

t.test('the batch writes exactly what the single renewal writes: card, UPI, Indian e-mandate after its notice', async (t) => {
  const ctx = await setup(t);
  const kinds: Array<{ country: string; method: Record<string, string>; cycle?: string }> = [
    { country: 'US', method: { type: 'card', token: 'tok_visa' } },
    { country: 'IN', method: { type: 'card', token: 'tok_rupay' } },
    { country: 'IN', method: { type: 'upi', vpa: 'success@upi' }, cycle: 'quarterly' },
  ];
  for (const kind of kinds) {
    const single = await subscribe(ctx, kind);
    const batched = await subscribe(ctx, kind);
    const periodEnd = kind.cycle === 'quarterly' ? new Date('2027-02-26T10:00:00Z') : PERIOD_END;
    if (kind.country === 'IN') {
      // The pre-debit notice goes out a day ahead, so the charge may run at the period end.
      ctx.clock.set(new Date(periodEnd.getTime() - DAY));
      t.equal(await ctx.services.renewals.sendRenewalNotice(single.subscriptionId, periodEnd), 'sent');
      t.equal(await ctx.services.renewals.sendRenewalNotice(batched.subscriptionId, periodEnd), 'sent');
    }
    ctx.clock.set(periodEnd);
    t.equal(await ctx.services.renewals.renew(single.subscriptionId, periodEnd), 'renewed');
    const outcomes = await ctx.services.renewals.renewMany([{ subscriptionId: batched.subscriptionId, periodEnd }]);
    t.same(outcomes, [{ subscriptionId: batched.subscriptionId, outcome: 'renewed', path: 'batch' }], `${kind.method.type} in ${kind.country}: the batch path`);
    const [a, b] = [await renewalState(ctx, single), await renewalState(ctx, batched)];
    t.same(b, a, `${kind.method.type} in ${kind.country}: same invoice, lines, payment, charge, events, subscription and account`);
    t.equal((a as any).invoices[0].status, 'paid');
    t.same(
      (b as any).events.map((e: any) => e.type).filter((type: string) => type !== 'subscription.renewal_notice'),
      ['invoice.created', 'subscription.renewed', 'payment.succeeded', 'invoice.paid'],
    );
    ctx.clock.set(START);
  }
});

t.test('with no notice window, an Indian mandate renewal sends its notice in the batch, as the single path does', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const single = await subscribe(ctx, { country: 'IN' });
  const batched = await subscribe(ctx, { country: 'IN' });
  ctx.clock.set(PERIOD_END);
  await ctx.services.renewals.renew(single.subscriptionId, PERIOD_END);
  t.same((await ctx.services.renewals.renewMany([item(batched)])).map((o) => o.path), ['batch']);
  const b: any = await renewalState(ctx, batched);
  t.same(b, await renewalState(ctx, single));
  t.ok(b.events.some((e: any) => e.type === 'subscription.renewal_notice'));
  t.equal(b.subscription.renewal_notice_for, PERIOD_END.toISOString());
});

t.test('a batch takes consecutive invoice numbers after those already issued', async (t) => {
  const ctx = await setup(t);
  const subs = [];
  for (let i = 0; i < 5; i++) subs.push(await subscribe(ctx));
  ctx.clock.set(PERIOD_END);
  await ctx.services.renewals.renewMany(subs.map(item));
  const { rows } = await ctx.query('select sequence from invoices order by sequence');
  t.same(rows.map((r: any) => r.sequence), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'five upgrades, then five renewals: gapless');
  const [counter] = (await ctx.query('select last_sequence from invoice_number_sequences')).rows;
  t.equal(counter.last_sequence, 10);
});

t.test('a batch run twice, or batches racing over the same subscriptions, renews each period once', async (t) => {
  const ctx = await setup(t);
  const subs = [];
  for (let i = 0; i < 6; i++) subs.push(await subscribe(ctx, { country: i % 2 ? 'US' : 'IN', method: i % 2 ? { type: 'card', token: 'tok_visa' } : { type: 'upi', vpa: 'success@upi' } }));
  // The Indian ones have had their notice, so all six are plain.
  ctx.clock.set(new Date(PERIOD_END.getTime() - DAY));
  for (const s of subs) await ctx.services.renewals.sendRenewalNotice(s.subscriptionId, PERIOD_END);
  ctx.clock.set(PERIOD_END);

  const first = await ctx.services.renewals.renewMany(subs.slice(0, 3).map(item));
  t.same(first.map((o) => o.outcome), ['renewed', 'renewed', 'renewed']);
  const again = await ctx.services.renewals.renewMany(subs.slice(0, 3).map(item));
  t.same(again.map((o) => o.outcome), ['skipped', 'skipped', 'skipped'], 'the second run finds nothing due');
  t.same(await counts(ctx), { invoices: 3, payments: 3, charges: 3, events: 12 });

  const racing = await Promise.all([
    ctx.services.renewals.renewMany(subs.map(item)),
    ctx.services.renewals.renewMany([...subs].reverse().map(item)),
    ctx.services.renewals.renewDue(),
    ctx.services.renewals.renew(subs[5]!.subscriptionId, PERIOD_END),
  ]);
  const renewed = racing.slice(0, 2).flatMap((outcomes) => (outcomes as any[]).filter((o) => o.outcome === 'renewed'));
  t.ok(renewed.length <= 3, 'no subscription renewed by both batches');
  t.same(await counts(ctx), { invoices: 6, payments: 6, charges: 6, events: 24 }, 'one invoice, payment, charge and four events each');
  const perPeriod = await ctx.query("select subscription_id, period_start, count(*)::int as n from invoices where kind = 'renewal' group by 1, 2");
  t.ok(perPeriod.rows.every((r: any) => r.n === 1));
  const states = await ctx.query('select distinct current_period_end, status from subscriptions');
  t.same(states.rows.map((r: any) => [r.current_period_end.toISOString(), r.status]), [['2027-01-26T10:00:00.000Z', 'active']]);
  t.equal((await ctx.query("select count(*)::int as n from invoices where kind = 'renewal' and status = 'paid'")).rows[0].n, 6);
});

t.test('a declined card in a batch goes past_due exactly as with the single path', async (t) => {
  const ctx = await setup(t);
  const single = await subscribe(ctx, { method: { type: 'card', token: 'tok_chargeCustomerFail' } });
  const batched = await subscribe(ctx, { method: { type: 'card', token: 'tok_chargeCustomerFail' } });
  const fine = await subscribe(ctx);
  ctx.clock.set(PERIOD_END);
  await ctx.services.renewals.renew(single.subscriptionId, PERIOD_END);
  const outcomes = await ctx.services.renewals.renewMany([item(batched), item(fine)]);
  t.same(outcomes.map((o) => o.path), ['batch', 'batch']);
  const b: any = await renewalState(ctx, batched);
  t.same(b, await renewalState(ctx, single));
  t.equal(b.account.status, 'past_due');
  t.equal(b.subscription.status, 'past_due');
  t.same([b.invoices[0].status, b.invoices[0].attempt_count, b.invoices[0].next_attempt_at], ['open', 1, '2026-12-27T10:00:00.000Z'], 'retried after a day');
  t.same([b.payments[0].status, b.payments[0].failure_code], ['failed', 'card_declined']);
  t.same(b.events.map((e: any) => e.type), ['invoice.created', 'subscription.renewed', 'payment.failed', 'subscription.past_due']);
  t.equal(((await renewalState(ctx, fine)) as any).invoices[0].status, 'paid', 'its neighbour in the batch is paid');
});

t.test('a mixed batch sends everything but the plain case through the single renewal', async (t) => {
  const ctx = await setup(t, { TEST_CLOCKS_ENABLED: 'true' });
  const plain = await subscribe(ctx);
  const cancelling = await subscribe(ctx);
  t.equal((await ctx.call('POST', `/v1/subscriptions/${cancelling.subscriptionId}/cancel`)).status, 200);
  const changing = await subscribe(ctx, { plan: 'plan_growth_v1' });
  t.equal((await ctx.call('POST', `/v1/subscriptions/${changing.subscriptionId}/plan-change`, { body: { planId: 'plan_starter_v1' } })).status, 200);
  const netbanking = await subscribe(ctx, { country: 'IN', method: { type: 'netbanking', bankCode: 'HDFC' } });
  const awaitingNotice = await subscribe(ctx, { country: 'IN' });
  const overCap = await subscribe(ctx, { country: 'IN', plan: 'plan_enterprise_v1', cycle: 'annual' });
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'c', frozenTime: START.toISOString() } })).body;
  const onClock = await subscribe(ctx, { testClockId: clock.id });
  // The over-cap one has had its notice: the e-mandate, not the notice, keeps it off the batch.
  const capEnd = new Date('2027-11-26T10:00:00Z');
  ctx.clock.set(new Date(capEnd.getTime() - DAY));
  t.equal(await ctx.services.renewals.sendRenewalNotice(overCap.subscriptionId, capEnd), 'sent');
  ctx.clock.set(capEnd);
  await ctx.query('update test_clocks set frozen_time = $1', [PERIOD_END]);

  const all = [plain, cancelling, changing, netbanking, awaitingNotice, onClock];
  const outcomes = await ctx.services.renewals.renewMany([...all.map(item), { subscriptionId: overCap.subscriptionId, periodEnd: capEnd }]);
  const by = new Map(outcomes.map((o) => [o.subscriptionId, [o.path, o.outcome]]));
  // The context clock is a year on: everything monthly is many periods late, but renews one period per call.
  t.same(by.get(plain.subscriptionId), ['batch', 'renewed']);
  t.same(by.get(cancelling.subscriptionId), ['single', 'cancelled']);
  t.same(by.get(changing.subscriptionId), ['single', 'renewed']);
  t.same(by.get(netbanking.subscriptionId), ['single', 'invoiced']);
  t.same(by.get(awaitingNotice.subscriptionId), ['single', 'invoiced'], 'its notice goes out now and the charge waits');
  t.same(by.get(overCap.subscriptionId), ['single', 'invoiced'], 'above the e-mandate: invoiced for the customer to pay');
  t.same(by.get(onClock.subscriptionId), ['single', 'renewed'], 'on its own clock');

  const status = async (s: Subscribed) => (await ctx.query('select status, plan_id, scheduled_plan_id from subscriptions where id = $1', [s.subscriptionId])).rows[0];
  t.equal((await status(cancelling)).status, 'cancelled');
  t.same(await status(changing), { status: 'active', plan_id: 'plan_starter_v1', scheduled_plan_id: null }, 'the scheduled plan applied');
  const paymentOf = async (s: Subscribed) => (await ctx.query("select status, failure_code from payments where account_id = $1 and purpose = 'renewal'", [s.accountId])).rows;
  t.same(await paymentOf(netbanking), [{ status: 'awaiting_confirmation', failure_code: null }]);
  t.same(await paymentOf(awaitingNotice), [], 'no charge before the notice window');
  t.same(await paymentOf(overCap), [], 'no charge, and no decline: it waits for the customer');
  const waiting = await ctx.query("select status, action_required from invoices where account_id = $1 and kind = 'renewal'", [overCap.accountId]);
  t.same(waiting.rows, [{ status: 'open', action_required: 'above_mandate' }]);
  t.same(await paymentOf(plain), [{ status: 'succeeded', failure_code: null }]);
  t.equal((await ctx.query("select count(*)::int as n from invoices where kind = 'renewal'")).rows[0].n, 6, 'all but the cancelled one invoiced');
});

t.test('the worker drains a wave in batches; the sweep queues only the unusual ones, and a flushed Redis loses nothing', async (t) => {
  const mailDir = `/tmp/billing-mail-${process.pid}-batch`;
  t.teardown(async () => (await import('node:fs')).rmSync(mailDir, { recursive: true, force: true }));
  const ctx = await setup(t, { SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50', MAIL_DIR: mailDir });
  const subs = [];
  for (let i = 0; i < 24; i++) subs.push(await subscribe(ctx));
  const cancelling = await subscribe(ctx);
  await ctx.call('POST', `/v1/subscriptions/${cancelling.subscriptionId}/cancel`);
  ctx.clock.set(PERIOD_END);

  const due = await ctx.services.renewals.findDue();
  t.same(due.map((d) => (d.kind === 'renew' ? d.subscriptionId : d.kind)), [cancelling.subscriptionId], 'plain renewals are not queued one by one');
  t.equal(await ctx.services.renewals.countBatchDue(1000), 24);

  const logger = createLogger({ LOG_LEVEL: 'silent' });
  for (let i = 0; i < 2; i++) {
    const workers = await startWorkers({ config: ctx.config, logger, database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock });
    t.teardown(() => workers.close());
  }
  await new Promise((r) => setTimeout(r, 60));
  const keys = await scanKeys(ctx.redis, `${ctx.config.QUEUE_PREFIX}:*`);
  if (keys.length) await ctx.redis.del(...keys);
  const deadline = Date.now() + 20_000;
  while ((await ctx.query("select count(*)::int as n from invoices where kind = 'renewal' and status = 'paid'")).rows[0].n < 24 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  // A double would need work still due or a job still queued or running: wait until there is none.
  const idle = async () => {
    const jobs = await ctx.queues.renewals.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    return Object.values(jobs).every((n) => n === 0) && (await ctx.services.renewals.countBatchDue(1000)) === 0 && (await ctx.services.renewals.findDue()).length === 0;
  };
  const idleBy = Date.now() + 20_000;
  while (!(await idle()) && Date.now() < idleBy) await new Promise((r) => setTimeout(r, 50));
  t.same(await counts(ctx), { invoices: 24, payments: 24, charges: 24, events: 96 });
  t.equal((await ctx.query("select status from subscriptions where id = $1", [cancelling.subscriptionId])).rows[0].status, 'cancelled');
  t.equal(await ctx.services.renewals.countBatchDue(1000), 0);
});
