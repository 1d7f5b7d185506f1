import t, { type Test } from 'tap';
import { paidAccount, readyAccount, setup, type TestContext } from './helper.js';

// Starter in INR: 60 paise a 60-second pulse, 25 paise an SMS segment.
const PULSE = 60;
const call = (accountId: string, id: string, durationSeconds: number, holdId?: string) => ({ id, accountId, type: 'voice_call', durationSeconds, ...(holdId ? { holdId } : {}) });
const holdBody = (reference: string, extra: Record<string, unknown> = {}) => ({ action: 'outbound_call', destination: '+919876543210', reference, ...extra });

async function invariants(t: Test, ctx: TestContext) {
  const report = await ctx.call('GET', '/v1/ops/ledger-invariants');
  t.same(report.body.violations, [], `ledger and hold invariants hold over ${report.body.accountsChecked} accounts`);
}

async function credits(ctx: TestContext, accountId: string) {
  return (await ctx.call('GET', `/v1/accounts/${accountId}/credits`)).body as { balance: number; held: number; available: number; alerts: Record<string, unknown> };
}

t.test('500 concurrent holds on a balance that covers 100 grant exactly 100; their records debit exactly what was used', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 100 * PULSE);
  const answers = await Promise.all(
    Array.from({ length: 500 }, (_, i) => ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody(`call-${i}`) })),
  );
  const granted = answers.filter((a) => a.status === 201 && a.body.granted);
  const refused = answers.filter((a) => a.status === 200 && !a.body.granted);
  t.equal(granted.length, 100, 'exactly the balance\'s worth granted');
  t.equal(refused.length, 400);
  t.ok(refused.every((a) => a.body.reason === 'insufficient_credits' && a.body.hold === null), 'the rest refused with authorize\'s reason');
  t.same(await credits(ctx, account.id), { ...(await credits(ctx, account.id)), balance: 6000, held: 6000, available: 0 });
  const heldRows = await ctx.query("select count(*)::int as n, sum(amount)::int as sum from credit_holds where account_id = $1 and status = 'active'", [account.id]);
  t.same(heldRows.rows[0], { n: 100, sum: 6000 });

  // Nothing left to hold: authorize (without a hold) reads the available balance.
  const auth = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.read, body: { action: 'outbound_call', destination: '+919876543210' } });
  t.same([auth.body.allowed, auth.body.reason], [false, 'insufficient_credits']);

  // The records: half the calls talked 61 s (2 pulses: beyond the 1 held), a quarter 30 s, a quarter never connected (0 s).
  const holds = granted.map((a) => a.body.hold);
  const durations = holds.map((_, i) => (i % 4 === 0 ? 0 : i % 4 === 1 ? 30 : 61));
  // 61 s needs a second pulse: the calls that ended cheaper freed theirs first, so settle the cheap ones first.
  const order = holds.map((h, i) => ({ h, d: durations[i]! })).sort((a, b) => a.d - b.d);
  const settled = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: order.map(({ h, d }) => call(account.id, h.reference, d, h.id)) } });
  const results = settled.body.results as Array<{ status: string; amount: number; units: number; holdId: string; shortfall: number }>;
  t.ok(results.every((r) => r.status === 'debited'), 'every held call is billed');
  const used = order.reduce((sum, { d }) => sum + Math.ceil(d / 60) * PULSE, 0);
  const debited = results.reduce((sum, r) => sum + r.amount, 0);
  const shortfall = results.reduce((sum, r) => sum + r.shortfall, 0);
  t.equal(debited + shortfall, used, 'each call priced at its actual pulses');
  t.equal(debited, Math.min(used, 6000), 'debited what was used, up to all there was');
  const after = await credits(ctx, account.id);
  t.same([after.balance, after.held], [6000 - debited, 0], 'every hold freed: nothing held after the records');
  const states = await ctx.query('select status, count(*)::int as n from credit_holds where account_id = $1 group by status', [account.id]);
  t.same(states.rows, [{ status: 'settled', n: 100 }]);
  await invariants(t, ctx);
});

t.test('the same call id holds once, even sent at once; a record sent twice settles once', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const answers = await Promise.all(Array.from({ length: 5 }, () => ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody('call-x', { units: 3 }) })));
  t.same(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 201], 'one new hold, four answers of it');
  const ids = new Set(answers.map((a) => a.body.hold.id));
  t.equal(ids.size, 1, 'one hold');
  t.ok(answers.filter((a) => a.status === 200).every((a) => a.body.duplicate && a.body.granted));
  t.equal((await credits(ctx, account.id)).held, 3 * PULSE, 'held once: 3 pulses');
  const hold = answers[0]!.body.hold;

  const record = { events: [call(account.id, 'call-x', 100, hold.id)] };
  const twice = await Promise.all([0, 1].map(() => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: record })));
  t.same(twice.map((r) => r.body.results[0].duplicate).sort(), [false, true]);
  t.ok(twice.every((r) => r.body.results[0].amount === 2 * PULSE && r.body.results[0].holdId === hold.id), '100 s = 2 pulses, both answers the same');
  const again = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: record });
  t.equal(again.body.results[0].duplicate, true, 'a later retry too');
  const after = await credits(ctx, account.id);
  t.same([after.balance, after.held], [100000 - 2 * PULSE, 0], 'debited once, the third pulse freed');
  const ledger = await ctx.query("select count(*)::int as n from credit_ledger where source_key = $1", [`usage:${account.id}:call-x`]);
  t.equal(ledger.rows[0].n, 1);
  const got = await ctx.call('GET', `/v1/holds/${hold.id}`, { key: ctx.keys.read });
  t.same([got.body.status, got.body.settledAmount, got.body.usageEventId], ['settled', 120, 'call-x']);

  // The same reference after it settled: still that hold, nothing held again.
  const late = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody('call-x') });
  t.same([late.status, late.body.duplicate, late.body.hold.status], [200, true, 'settled']);
  t.equal((await credits(ctx, account.id)).held, 0);
});

t.test('a long call extends its hold until the balance cannot; release frees; ended holds cannot move', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 5 * PULSE);
  const first = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody('long-1', { units: 2, ttlSeconds: 120 }) });
  t.equal(first.status, 201);
  const hold = first.body.hold;
  t.same([hold.units, hold.amount, hold.status, hold.currency], [2, 120, 'active', 'INR']);
  t.equal(new Date(hold.expiresAt).getTime(), new Date('2026-11-26T10:02:00Z').getTime(), 'expires after its ttl');

  ctx.clock.advance(100_000);
  const ext = await ctx.call('POST', `/v1/holds/${hold.id}/extend`, { key: ctx.keys.write, body: { units: 2 } });
  t.same([ext.status, ext.body.granted, ext.body.hold.units, ext.body.hold.amount], [200, true, 4, 240]);
  t.equal(new Date(ext.body.hold.expiresAt).getTime(), new Date('2026-11-26T10:03:40Z').getTime(), 'alive another ttl from now');
  const more = await ctx.call('POST', `/v1/holds/${hold.id}/extend`, { key: ctx.keys.write, body: { units: 2 } });
  t.same([more.status, more.body.granted, more.body.reason, more.body.hold.units], [200, false, 'insufficient_credits', 4], 'refused: the platform ends the call');

  // An extension retried with its Idempotency-Key adds once.
  const keyed = () => ctx.call('POST', `/v1/holds/${hold.id}/extend`, { key: ctx.keys.write, body: { units: 1 }, headers: { 'idempotency-key': 'ext-1' } });
  const [k1, k2] = [await keyed(), await keyed()];
  t.same([k1.body.hold.units, k2.body.hold.units, k2.headers['idempotent-replayed']], [5, 5, 'true']);
  t.equal((await credits(ctx, account.id)).available, 0);

  const released = await ctx.call('POST', `/v1/holds/${hold.id}/release`, { key: ctx.keys.write });
  t.same([released.status, released.body.status], [200, 'released']);
  t.same(await credits(ctx, account.id), { ...(await credits(ctx, account.id)), balance: 300, held: 0, available: 300 });
  const twice = await ctx.call('POST', `/v1/holds/${hold.id}/release`, { key: ctx.keys.write });
  t.same([twice.status, twice.body.status], [200, 'released'], 'releasing again answers it as it is');
  const late = await ctx.call('POST', `/v1/holds/${hold.id}/extend`, { key: ctx.keys.write, body: { units: 1 } });
  t.same([late.status, late.body.code], [409, 'hold_not_active']);

  // A record naming a released hold is rated as any other usage.
  const rated = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [call(account.id, 'long-1', 90, hold.id)] } });
  t.same([rated.body.results[0].status, rated.body.results[0].amount, rated.body.results[0].holdId], ['debited', 120, null]);

  // Another account's key sees no such hold; nor does anyone an unknown one.
  const other = await readyAccount(ctx);
  const otherKey = await ctx.key(['write', 'read'], other.id);
  t.equal((await ctx.call('GET', `/v1/holds/${hold.id}`, { key: otherKey })).body.code, 'hold_not_found');
  t.equal((await ctx.call('POST', `/v1/holds/${hold.id}/release`, { key: otherKey })).status, 404);
  t.equal((await ctx.call('GET', '/v1/holds/hold_00000000000000000000000000', { key: ctx.keys.read })).status, 404);
  t.equal((await ctx.call('GET', '/v1/holds/nope', { key: ctx.keys.read })).status, 400);
  await invariants(t, ctx);
});

t.test('a call that outruns its hold and the balance debits all there is and reports the shortfall', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 3 * PULSE);
  const hold = (await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody('runaway') })).body.hold;
  const res = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [call(account.id, 'runaway', 300, hold.id)] } });
  t.same(res.body.results[0], { id: 'runaway', accountId: account.id, status: 'debited', units: 5, amount: 180, reason: null, holdId: hold.id, shortfall: 120, duplicate: false });
  t.same((await credits(ctx, account.id)).balance, 0);
  await invariants(t, ctx);
});

t.test('a crashed caller\'s holds expire and are released by the workers; authorize with a hold is one request', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 2 * PULSE);
  const one = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, {
    key: ctx.keys.write,
    body: { action: 'outbound_call', destination: '+919876543210', hold: { reference: 'c1', ttlSeconds: 30 } },
  });
  t.same([one.status, one.body.allowed, one.body.hold.amount, one.body.hold.status], [200, true, PULSE, 'active'], 'allowed, and held in the same request');
  const two = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', hold: { reference: 'c2', ttlSeconds: 600 } } });
  t.equal(two.body.allowed, true);
  const three = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', hold: { reference: 'c3' } } });
  t.same([three.body.allowed, three.body.reason, three.body.hold], [false, 'insufficient_credits', null], 'the third call has nothing left to hold');
  const noHoldForPurchase = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.write, body: { action: 'purchase_exophone', hold: { reference: 'x' } } });
  t.same([noHoldForPurchase.status, noHoldForPurchase.body.code], [400, 'validation_failed']);

  // The caller crashed: no record, no release. Nothing expires before its time...
  t.equal(await ctx.services.holds.expireDue(), 0);
  ctx.clock.advance(31_000);
  // ...then the first expires, the second (ten minutes) stays: the workers' sweep frees it.
  const { maintenanceTasks } = await import('../src/jobs/maintenance.js');
  const sweep = maintenanceTasks({ db: ctx.database.db, clock: ctx.clock, ...ctx.services, queues: ctx.queues, schedulerIntervalMs: 1000 }).find((task) => task.name === 'release expired holds')!;
  t.ok(sweep.everyMs <= 5000, 'every few seconds');
  t.same(await sweep.run(), { expired: 1 });
  t.equal(await ctx.services.holds.expireDue(), 0, 'once');
  // Past its time, a hold no worker has freed yet cannot be extended or spent: it ends when touched.
  const late = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', hold: { reference: 'c4', ttlSeconds: 10 } } });
  t.equal(late.body.allowed, true);
  ctx.clock.advance(10_000);
  const extendLate = await ctx.call('POST', `/v1/holds/${late.body.hold.id}/extend`, { key: ctx.keys.write, body: { units: 1 } });
  t.same([extendLate.status, extendLate.body.code], [409, 'hold_not_active']);
  t.equal((await ctx.call('GET', `/v1/holds/${late.body.hold.id}`, { key: ctx.keys.read })).body.status, 'expired');
  t.equal(await ctx.services.holds.expireDue(), 0, 'nothing left for the sweep');
  const states = await ctx.query('select reference, status from credit_holds where account_id = $1 order by reference', [account.id]);
  t.same(states.rows, [
    { reference: 'c1', status: 'expired' },
    { reference: 'c2', status: 'active' },
    { reference: 'c4', status: 'expired' },
  ]);
  const after = await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.read, body: { action: 'outbound_call', destination: '+919876543210' } });
  t.equal(after.body.allowed, true, 'the expired hold\'s credits are available again');
  t.same(await credits(ctx, account.id), { ...(await credits(ctx, account.id)), held: PULSE, available: PULSE });
  await invariants(t, ctx);
});

t.test('holds are refused for authorize\'s reasons; a trial holds nothing and is allowed', async (t) => {
  const ctx = await setup(t);
  const trial = await readyAccount(ctx);
  const notListed = await ctx.call('POST', `/v1/accounts/${trial.id}/holds`, { key: ctx.keys.write, body: holdBody('t1') });
  t.same([notListed.status, notListed.body.granted, notListed.body.reason], [200, false, 'number_not_whitelisted']);
  const listed = await ctx.call('POST', `/v1/accounts/${trial.id}/whitelisted-numbers`, { key: ctx.keys.write, body: { number: '+919876543210' } });
  t.equal(listed.status, 201);
  const free = await ctx.call('POST', `/v1/accounts/${trial.id}/holds`, { key: ctx.keys.write, body: holdBody('t2') });
  t.same([free.status, free.body.granted, free.body.hold.amount], [201, true, 0], 'a trial\'s whitelisted call holds nothing: its plan bills nothing');
  const limited = await paidAccount(ctx, 10000);
  await ctx.query("update accounts set status = 'limited' where id = $1", [limited.id]);
  const res = await ctx.call('POST', `/v1/accounts/${limited.id}/holds`, { key: ctx.keys.write, body: holdBody('l1') });
  t.same([res.body.granted, res.body.reason], [false, 'account_limited']);
  t.equal((await ctx.call('POST', '/v1/accounts/acc_00000000000000000000000000/holds', { key: ctx.keys.write, body: holdBody('n1') })).status, 404);
  t.equal((await ctx.call('POST', `/v1/accounts/${limited.id}/holds`, { key: ctx.keys.read, body: holdBody('n1') })).status, 403, 'a read key cannot hold');
});

t.test('available balance drives auto-recharge: holds that leave it under the threshold ask for a recharge', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 3000);
  const set = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { key: ctx.keys.write, body: { enabled: true, threshold: 2000, amount: 10000 } });
  t.equal(set.status, 200);
  const hold = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: holdBody('big', { units: 20 }) });
  t.equal(hold.body.hold.amount, 1200);
  const settings = await ctx.query('select next_attempt_at from auto_recharge_settings where account_id = $1', [account.id]);
  t.ok(settings.rows[0].next_attempt_at, 'a recharge is asked: 3000 - 1200 held is under 2000');
  const low = await ctx.query("select payload from outbox where type = 'credits.low' and account_id = $1", [account.id]);
  t.same(low.rows.map((r) => r.payload.balance), [1800], 'credits.low says the available balance');
});
