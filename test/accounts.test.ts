import t from 'tap';
import { createAccount, setup } from './helper.js';

t.test('a trial account: currency follows country, trial entitlements, KYC pending', async (t) => {
  const ctx = await setup(t);
  const india = await createAccount(ctx, { country: 'in' });
  t.equal(india.currency, 'INR');
  t.equal(india.status, 'trial');
  t.equal(india.kyc.status, 'pending');
  t.match(india.id, /^acc_[0-9a-z]{26}$/);
  const us = await createAccount(ctx, { country: 'US' });
  t.equal(us.currency, 'USD');

  const res = await ctx.call('GET', `/v1/accounts/${india.id}/entitlements`, { key: ctx.keys.read });
  t.equal(res.status, 200);
  const { entitlements: e, outbound, whitelist, plan } = res.body;
  t.equal(plan.code, 'trial');
  // The brief's "Before (Trial)" column.
  t.equal(e.numberWhitelisting.required, true, 'number whitelisting: required for all outbound');
  t.equal(outbound, 'whitelisted_only');
  t.same(e.exophones, { limit: 0, trialNumbers: 1 }, 'ExoPhones: 1 trial number');
  t.equal(e.campaigns, 'not_available', 'campaigns: not available');
  t.equal(e.whatsapp, 'not_available', 'WhatsApp: not available');
  t.equal(e.smsApi, 'whitelisted_only', 'SMS: whitelisted only');
  t.same(e.support, { tier: 'email_only', channels: ['email'] }, 'support: email only');
  t.equal(e.apiRateLimit.tier, 'standard', 'API rate limits: standard');
  t.same(whitelist, { required: true, limit: 5, used: 0 });

  const got = await ctx.call('GET', `/v1/accounts/${india.id}`, { key: ctx.keys.read });
  t.same(got.body, india, 'GET returns what POST returned');
});

t.test('account creation refuses bad input with field paths and writes nothing', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('POST', '/v1/accounts', { body: { name: '', email: 'not-an-email', country: 'XX' } });
  t.equal(res.status, 400);
  t.equal(res.body.code, 'validation_failed');
  t.match(res.headers['content-type'], /application\/problem\+json/);
  t.same(res.body.errors.map((e: any) => e.path).sort(), ['body.country', 'body.email', 'body.name']);
  t.ok(res.body.requestId, 'request id in the problem');
  const list = await ctx.call('GET', '/v1/accounts');
  t.equal(list.body.data.length, 0, 'nothing written');

  const malformed = await ctx.app.inject({
    method: 'POST',
    url: '/v1/accounts',
    headers: { authorization: `Bearer ${ctx.keys.ops}`, 'content-type': 'application/json' },
    payload: '{"name":',
  });
  t.equal(malformed.statusCode, 400);
  t.equal(malformed.json().code, 'malformed_request');

  const wrongType = await ctx.app.inject({
    method: 'POST',
    url: '/v1/accounts',
    headers: { authorization: `Bearer ${ctx.keys.ops}`, 'content-type': 'text/plain' },
    payload: 'hello',
  });
  t.equal(wrongType.statusCode, 415);
  t.equal(wrongType.json().code, 'unsupported_media_type');
  t.match(wrongType.json().detail, /send Content-Type: application\/json/, 'the detail says what to send');
});

t.test('KYC: pending -> submitted -> approved | rejected, rejected may resubmit', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  const kyc = (status: string, extra: object = {}, key = ctx.keys.kyc) =>
    ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key, body: { status, ...extra } });

  t.equal((await kyc('submitted', {}, ctx.keys.write)).status, 403, 'write scope cannot set KYC');

  const early = await kyc('approved');
  t.equal(early.status, 409, 'pending cannot jump to approved');
  t.equal(early.body.code, 'kyc_transition_not_allowed');
  t.equal(early.body.currentStatus, 'pending');

  t.equal((await kyc('submitted')).body.kyc.status, 'submitted');
  t.equal((await kyc('rejected')).status, 400, 'a rejection needs a reason');
  const rejected = await kyc('rejected', { reason: 'PAN card unreadable' });
  t.same([rejected.body.kyc.status, rejected.body.kyc.reason], ['rejected', 'PAN card unreadable']);
  t.equal((await kyc('approved')).status, 409, 'rejected cannot be approved without resubmitting');
  t.equal((await kyc('submitted')).body.kyc.status, 'submitted', 'rejected may resubmit');
  const approved = await kyc('approved');
  t.equal(approved.body.kyc.status, 'approved');
  t.equal(approved.body.kyc.reason, null);
  const again = await kyc('approved');
  t.equal(again.status, 200, 'setting the current status again is a no-op');
  t.equal((await kyc('submitted')).status, 409, 'approved is final');

  const { rows } = await ctx.query(
    "select payload from outbox where type = 'kyc.status_changed' and account_id = $1 order by id",
    [a.id],
  );
  t.same(
    rows.map((r: any) => `${r.payload.from}->${r.payload.to}`),
    ['pending->submitted', 'submitted->rejected', 'rejected->submitted', 'submitted->approved'],
    'one outbox event per change, none for the no-op',
  );
});

t.test('concurrent KYC decisions: exactly one wins', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  await ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'submitted' } });
  const results = await Promise.all([
    ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'approved' } }),
    ctx.call('PUT', `/v1/accounts/${a.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'rejected', reason: 'blurry' } }),
  ]);
  t.same(results.map((r) => r.status).sort(), [200, 409]);
  const { rows } = await ctx.query("select count(*)::int as n from outbox where type = 'kyc.status_changed' and account_id = $1", [a.id]);
  t.equal(rows[0].n, 2, 'submitted plus one decision');
});

t.test('trial whitelist: E.164 only, limit from config, idempotent add, remove', async (t) => {
  const ctx = await setup(t, { TRIAL_WHITELIST_LIMIT: '2' });
  const a = await createAccount(ctx);
  const add = (number: string) => ctx.call('POST', `/v1/accounts/${a.id}/whitelisted-numbers`, { key: ctx.keys.write, body: { number } });

  for (const bad of ['9876543210', '+91 98765 43210', '+0123456789', '+91123', 'abc']) {
    const res = await add(bad);
    t.ok(res.status === 422 || res.status === 400, `${bad} refused (${res.status})`);
  }
  const invalidPlan = await add('+919999999999');
  t.equal(invalidPlan.status, 201, 'a valid Indian mobile number');
  t.equal(invalidPlan.body.number, '+919999999999');
  const notValid = await add('+11234567890');
  t.equal(notValid.status, 422, 'a US number with an impossible area code');
  t.equal(notValid.body.code, 'invalid_phone_number');

  const again = await add('+919999999999');
  t.equal(again.status, 200, 'adding it again answers the existing entry');
  t.equal((await add('+14155550123')).status, 201);
  const full = await add('+447911123456');
  t.equal(full.status, 409);
  t.equal(full.body.code, 'whitelist_limit_reached');
  t.equal(full.body.limit, 2);

  const list = await ctx.call('GET', `/v1/accounts/${a.id}/whitelisted-numbers?limit=1`, { key: ctx.keys.read });
  t.same(list.body.data.map((n: any) => n.number), ['+14155550123']);
  t.ok(list.body.nextCursor);
  const next = await ctx.call('GET', `/v1/accounts/${a.id}/whitelisted-numbers?limit=1&cursor=${list.body.nextCursor}`, { key: ctx.keys.read });
  t.same(next.body.data.map((n: any) => n.number), ['+919999999999']);
  t.equal(next.body.nextCursor, null);
  const badCursor = await ctx.call('GET', `/v1/accounts/${a.id}/whitelisted-numbers?cursor=%%%`, { key: ctx.keys.read });
  t.equal(badCursor.status, 400);

  const removed = await ctx.call('DELETE', `/v1/accounts/${a.id}/whitelisted-numbers/%2B919999999999`, { key: ctx.keys.write });
  t.equal(removed.status, 204);
  const gone = await ctx.call('DELETE', `/v1/accounts/${a.id}/whitelisted-numbers/%2B919999999999`, { key: ctx.keys.write });
  t.equal(gone.status, 404);
  t.equal(gone.body.code, 'whitelisted_number_not_found');
  t.equal((await add('+447911123456')).status, 201, 'room again after a removal');
  const ent = await ctx.call('GET', `/v1/accounts/${a.id}/entitlements`);
  t.same(ent.body.whitelist, { required: true, limit: 2, used: 2 });
});

t.test('concurrent adds cannot overfill the whitelist', async (t) => {
  const ctx = await setup(t, { TRIAL_WHITELIST_LIMIT: '3' });
  const a = await createAccount(ctx);
  const numbers = ['+919811111111', '+919822222222', '+919833333333', '+919844444444', '+919855555555', '+919866666666'];
  const results = await Promise.all(
    numbers.map((number) => ctx.call('POST', `/v1/accounts/${a.id}/whitelisted-numbers`, { key: ctx.keys.write, body: { number } })),
  );
  t.equal(results.filter((r) => r.status === 201).length, 3);
  t.equal(results.filter((r) => r.status === 409).length, 3);
  const { rows } = await ctx.query('select count(*)::int as n from whitelisted_numbers where account_id = $1', [a.id]);
  t.equal(rows[0].n, 3);
});

t.test('whitelisting does not apply once the plan allows any number', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  await ctx.query("update accounts set plan_id = 'plan_starter_v1', status = 'active' where id = $1", [a.id]);
  const res = await ctx.call('POST', `/v1/accounts/${a.id}/whitelisted-numbers`, { key: ctx.keys.write, body: { number: '+919811111111' } });
  t.equal(res.status, 409);
  t.equal(res.body.code, 'whitelist_not_applicable');
  const ent = await ctx.call('GET', `/v1/accounts/${a.id}/entitlements`);
  t.equal(ent.body.outbound, 'any');
  t.equal(ent.body.entitlements.exophones.limit, 5);

  await ctx.query("update accounts set status = 'limited' where id = $1", [a.id]);
  t.equal((await ctx.call('GET', `/v1/accounts/${a.id}/entitlements`)).body.outbound, 'blocked', 'a limited account calls no one');
});

t.test('accounts list pages with a cursor', async (t) => {
  const ctx = await setup(t);
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ctx.clock.advance(1000);
    ids.push((await createAccount(ctx, { email: `a${i}@example.com` })).id);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `/v1/accounts?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await ctx.call('GET', url);
    seen.push(...res.body.data.map((a: any) => a.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  t.same(seen, ids, 'every account once, oldest first');
});
