import t, { type Test } from 'tap';
import type { ChargeRequest, ChargeResult, PaymentProvider } from '../src/modules/payments/provider.js';
import { createSandboxProvider } from '../src/modules/payments/sandbox.js';
import { createServices } from '../src/services.js';
import { paidAccount, readyAccount, setup, type TestContext } from './helper.js';

/**
 * Every purpose settles through the one payments service: succeeded, declined, and unknown
 * then reconciled by its one sweep. The gateway is the sandbox behind a switch: `decline`
 * and `lose` answer without the sandbox recording anything (a decline; an answer lost before
 * the gateway saw the charge), `pass` lets the sandbox charge.
 */
type Mode = 'pass' | 'decline' | 'lose';

async function fixture(t: Test) {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const sandbox = createSandboxProvider({ db: ctx.database.db, clock: ctx.clock });
  let mode: Mode = 'pass';
  const answer = (request: ChargeRequest): Promise<ChargeResult> =>
    mode === 'decline'
      ? Promise.resolve({ status: 'failed', reference: null, code: 'card_declined', message: 'Your card was declined.' })
      : mode === 'lose'
        ? Promise.resolve({ status: 'unknown' })
        : sandbox.charge(request);
  const provider: PaymentProvider = { ...sandbox, charge: answer, chargeMany: (requests) => Promise.all(requests.map(answer)) };
  const services = createServices({ config: ctx.config, database: ctx.database, clock: ctx.clock, provider });
  return { ctx, services, setMode: (m: Mode) => void (mode = m) };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

const upgradeBody = { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, addOns: { whatsapp: false }, paymentMethod: { type: 'card', token: 'tok_visa' } };

/** Each purpose: how to make one payment of it, and what its success shows. */
const purposes: Record<
  string,
  { pay(f: Fixture, accountId: string): Promise<unknown>; prepare(f: Fixture): Promise<string>; paid(f: Fixture, accountId: string): Promise<boolean>; purpose?: string; attended?: boolean }
> = {
  upgrade: {
    prepare: async ({ ctx }) => (await readyAccount(ctx)).id,
    pay: ({ services }, accountId) => services.upgrades.upgrade(accountId, upgradeBody as never, null),
    paid: async ({ ctx }, accountId) => (await ctx.query('select status from accounts where id = $1', [accountId])).rows[0].status === 'active',
  },
  renewal: {
    prepare: async ({ ctx }) => {
      const account = await paidAccount(ctx, 100000);
      const { rows } = await ctx.query('select current_period_end from subscriptions where account_id = $1', [account.id]);
      ctx.clock.set(new Date(rows[0].current_period_end.getTime() + 60_000));
      return account.id;
    },
    pay: async ({ ctx, services }, accountId) => {
      const { rows } = await ctx.query("select id, current_period_end from subscriptions where account_id = $1 and status in ('active', 'past_due')", [accountId]);
      return services.renewals.renew(rows[0].id, rows[0].current_period_end);
    },
    paid: async ({ ctx }, accountId) => (await ctx.query("select status from invoices where account_id = $1 and kind = 'renewal'", [accountId])).rows[0]?.status === 'paid',
  },
  purchase: {
    prepare: async ({ ctx }) => (await paidAccount(ctx, 100000)).id,
    pay: ({ services }, accountId) => services.purchases.purchase(accountId, { amount: 50000 }, null),
    paid: async ({ ctx }, accountId) => (await ctx.query("select count(*)::int as n from credit_ledger where account_id = $1 and kind = 'purchase'", [accountId])).rows[0].n === 1,
  },
  recharge: {
    prepare: async ({ ctx }) => {
      const account = await paidAccount(ctx, 100000);
      // Below the threshold at once: a recharge is due now.
      const res = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 200000, amount: 500000 } });
      if (res.status !== 200) throw new Error(`auto-recharge ${res.status}: ${JSON.stringify(res.body)}`);
      return account.id;
    },
    pay: ({ services }, accountId) => services.purchases.recharge(accountId),
    paid: async ({ ctx }, accountId) => (await ctx.query("select count(*)::int as n from credit_ledger where account_id = $1 and kind = 'recharge'", [accountId])).rows[0].n === 1,
  },
  // POST /v1/invoices/{id}/pay: the customer pays a renewal the e-mandate did not cover; the payment is the renewal's.
  'invoice payment of a renewal': {
    purpose: 'renewal',
    attended: true,
    prepare: async ({ ctx, services }) => {
      const account = await paidAccount(ctx, 100000);
      await ctx.query('update payment_methods set mandate_max_amount = 100 where account_id = $1', [account.id]);
      const { rows } = await ctx.query('select id, current_period_end from subscriptions where account_id = $1', [account.id]);
      ctx.clock.set(new Date(rows[0].current_period_end.getTime() + 60_000));
      if ((await services.renewals.renew(rows[0].id, rows[0].current_period_end)) !== 'invoiced') throw new Error('the renewal should wait for the customer');
      return account.id;
    },
    pay: async ({ ctx, services }, accountId) => {
      const { rows } = await ctx.query("select id from invoices where account_id = $1 and kind = 'renewal' and status = 'open'", [accountId]);
      return services.invoicePayments.pay(rows[0].id, { accountId: null }, {}, null);
    },
    paid: async ({ ctx }, accountId) => (await ctx.query("select status from invoices where account_id = $1 and kind = 'renewal'", [accountId])).rows[0]?.status === 'paid',
  },
  // The same for an auto-recharge the e-mandate did not cover: the payment is the recharge's.
  'invoice payment of an auto-recharge': {
    purpose: 'recharge',
    attended: true,
    prepare: async ({ ctx, services }) => {
      const account = await paidAccount(ctx, 100000);
      const res = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 200000, amount: 500000 } });
      if (res.status !== 200) throw new Error(`auto-recharge ${res.status}: ${JSON.stringify(res.body)}`);
      await ctx.query('update payment_methods set mandate_valid_until = $2 where account_id = $1', [account.id, new Date(ctx.clock.now().getTime() - 1000)]);
      if ((await services.purchases.recharge(account.id)) !== 'skipped') throw new Error('the recharge should wait for the customer');
      return account.id;
    },
    pay: async ({ ctx, services }, accountId) => {
      const { rows } = await ctx.query("select id from invoices where account_id = $1 and kind = 'credits' and status = 'open'", [accountId]);
      return services.invoicePayments.pay(rows[0].id, { accountId: null }, {}, null);
    },
    paid: async ({ ctx }, accountId) => (await ctx.query("select count(*)::int as n from credit_ledger where account_id = $1 and kind = 'recharge'", [accountId])).rows[0].n === 1,
  },
};

const paymentOf = async (ctx: TestContext, accountId: string, purpose: string) =>
  (await ctx.query('select id, status, failure_code from payments where account_id = $1 and purpose = $2 order by id desc limit 1', [accountId, purpose])).rows[0];

for (const [name, p] of Object.entries(purposes)) {
  const purpose = p.purpose ?? name;
  t.test(`${name}: succeeded`, async (t) => {
    const f = await fixture(t);
    const accountId = await p.prepare(f);
    await p.pay(f, accountId);
    t.equal((await paymentOf(f.ctx, accountId, purpose)).status, 'succeeded');
    t.ok(await p.paid(f, accountId), 'what it pays for is done');
    const events = (await f.ctx.query("select payload from outbox where type = 'payment.succeeded' and payload->>'purpose' = $1 and account_id = $2", [purpose, accountId])).rows;
    t.equal(events.length, 1, 'one payment.succeeded, naming its purpose');
  });

  t.test(`${name}: declined`, async (t) => {
    const f = await fixture(t);
    const accountId = await p.prepare(f);
    f.setMode('decline');
    const outcome = await Promise.resolve(p.pay(f, accountId)).then(
      () => 'answered',
      (err: { code?: string }) => err.code,
    );
    // The customer is told when present (upgrade, top-up, paying an invoice); a renewal or recharge records it.
    t.equal(outcome, purpose === 'upgrade' || purpose === 'purchase' || p.attended ? 'payment_declined' : 'answered');
    const payment = await paymentOf(f.ctx, accountId, purpose);
    t.equal(payment.status, 'failed');
    t.equal(payment.failure_code, 'card_declined');
    t.notOk(await p.paid(f, accountId), 'nothing bought');
    const events = (await f.ctx.query("select count(*)::int as n from outbox where type = 'payment.failed' and payload->>'purpose' = $1 and account_id = $2", [purpose, accountId])).rows;
    t.equal(events[0].n, 1, 'one payment.failed');
  });

  t.test(`${name}: unknown, then reconciled by the one sweep`, async (t) => {
    const f = await fixture(t);
    const accountId = await p.prepare(f);
    f.setMode('lose');
    await p.pay(f, accountId);
    const lost = await paymentOf(f.ctx, accountId, purpose);
    t.equal(lost.status, 'unknown');
    t.notOk(await p.paid(f, accountId), 'nothing bought while nobody knows');
    f.setMode('pass');
    t.same(await f.services.payments.reconcileStale(), { checked: 0, succeeded: 0, failed: 0, unknown: 0 }, 'too fresh to sweep');
    // The gateway never saw it: asked again under the same key once past the in-flight window (real time).
    await f.ctx.query("update payments set touched_at = touched_at - interval '3 minutes' where id = $1", [lost.id]);
    t.same(await f.services.payments.reconcileStale(), { checked: 1, succeeded: 1, failed: 0, unknown: 0 });
    t.equal((await paymentOf(f.ctx, accountId, purpose)).status, 'succeeded');
    t.ok(await p.paid(f, accountId), 'what it pays for is done');
    t.equal((await f.ctx.query('select count(*)::int as n from sandbox_charges where idempotency_key = $1', [lost.id])).rows[0].n, 1, 'charged once, under the payment id');
    t.same(await f.services.payments.reconcileStale(), { checked: 0, succeeded: 0, failed: 0, unknown: 0 }, 'nothing twice');
  });
}

t.test('GET /v1/accounts/{id}/payments lists every purpose, newest first, a page at a time, and only to keys that may see the account', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  for (const amount of [10000, 20000]) {
    ctx.clock.advance(60_000); // payment ids sort by time
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { body: { amount }, headers: { 'idempotency-key': `buy-${amount}` } });
    t.equal(res.status, 201);
  }
  const tiny = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { body: { amount: 50 }, headers: { 'idempotency-key': 'buy-50' } });
  t.equal(tiny.status, 400, 'less than ₹1 of credits is refused: no payment, no numbered invoice');
  t.equal(tiny.body.code, 'validation_failed');
  const first = await ctx.call('GET', `/v1/accounts/${account.id}/payments?limit=2`, { key: ctx.keys.read });
  t.equal(first.status, 200);
  t.same(first.body.data.map((p: any) => [p.purpose, p.amount]), [['purchase', 23600], ['purchase', 11800]], 'newest first: the two purchases (credits + 18% GST)');
  t.ok(first.body.nextCursor);
  const second = await ctx.call('GET', `/v1/accounts/${account.id}/payments?limit=2&cursor=${first.body.nextCursor}`, { key: ctx.keys.read });
  t.same(second.body.data.map((p: any) => p.purpose), ['upgrade']);
  t.equal(second.body.nextCursor, null);

  const other = await paidAccount(ctx, 100000);
  const bound = await ctx.key(['read'], other.id);
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/payments`, { key: bound })).status, 404, 'a key bound to another account sees nothing');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/payments`, { key: null })).status, 401);
  t.equal((await ctx.call('GET', '/v1/accounts/acc_00000000000000000000000000/payments')).status, 404);
});
