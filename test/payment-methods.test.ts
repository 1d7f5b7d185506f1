import t from 'tap';
import { paidAccount, setup } from './helper.js';

const card = (token: string) => ({ type: 'card' as const, token });

t.test('the upgrade\'s method is the default, shown without its token, with its Indian e-mandate', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const res = await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`, { key: ctx.keys.read });
  t.equal(res.status, 200);
  t.equal(res.body.data.length, 1);
  t.match(res.body.data[0], { type: 'card', label: 'visa', last4: '4242', isDefault: true, mandate: { maxAmount: 1500000, validUntil: null } });
  t.notMatch(JSON.stringify(res.body), /tok_/, 'no card token');
});

t.test('a new default is what the subscription charges from its next renewal on', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  ctx.clock.advance(60_000); // methods list oldest first
  const added = await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { key: ctx.keys.write, body: { paymentMethod: card('tok_mastercard'), makeDefault: true } });
  t.equal(added.status, 201);
  t.match(added.body, { type: 'card', label: 'mastercard', last4: '4444', isDefault: true });
  const listed = (await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`)).body.data;
  t.same(listed.map((m: any) => [m.label, m.isDefault]), [['visa', false], ['mastercard', true]], 'one default');
  const sub = (await ctx.call('GET', `/v1/accounts/${account.id}/subscription`)).body;
  t.same(sub.paymentMethod, { type: 'card', label: 'mastercard' });

  const { rows } = await ctx.query('select id, current_period_end from subscriptions where account_id = $1', [account.id]);
  ctx.clock.set(new Date(rows[0].current_period_end.getTime() + 60_000));
  await ctx.query("update subscriptions set renewal_notice_for = current_period_end, renewal_notice_at = current_period_end - interval '2 days' where account_id = $1", [account.id]);
  t.equal(await ctx.services.renewals.renew(rows[0].id, rows[0].current_period_end), 'renewed');
  const renewal = await ctx.query("select payment_method_id, status from payments where purpose = 'renewal' and account_id = $1", [account.id]);
  t.equal(renewal.rows[0].payment_method_id, added.body.id, 'the renewal charged the new default');
  t.equal(renewal.rows[0].status, 'succeeded');
});

t.test('UPI and net banking are for India; an e-mandate above the cap needs the customer\'s authentication', async (t) => {
  const ctx = await setup(t);
  const india = await paidAccount(ctx, 100000);
  const us = await paidAccount(ctx, 100000, {}, { country: 'US' });
  const add = (accountId: string, body: object) => ctx.call('POST', `/v1/accounts/${accountId}/payment-methods`, { body });

  const upiAbroad = await add(us.id, { paymentMethod: { type: 'upi', vpa: 'success@upi' } });
  t.equal(upiAbroad.status, 422);
  t.equal(upiAbroad.body.code, 'payment_method_not_allowed');
  const usMandate = await add(us.id, { paymentMethod: card('tok_visa'), mandate: { maxAmount: 100000 } });
  t.equal(usMandate.body.code, 'mandate_not_applicable');

  const above = await add(india.id, { paymentMethod: { type: 'upi', vpa: 'success@upi' }, mandate: { maxAmount: 5000000 } });
  t.equal(above.status, 422);
  t.equal(above.body.code, 'mandate_above_cap');
  const authenticated = await add(india.id, { paymentMethod: { type: 'upi', vpa: 'success@upi' }, mandate: { maxAmount: 5000000, validUntil: '2028-03-31T18:29:59Z', authenticated: true } });
  t.equal(authenticated.status, 201);
  t.match(authenticated.body, { type: 'upi', label: 'su***@upi', last4: null, isDefault: false, mandate: { maxAmount: 5000000, validUntil: '2028-03-31T18:29:59.000Z' } });
  t.notMatch(JSON.stringify(authenticated.body), /success@upi/, 'the VPA is never shown whole');
  const usCard = (await ctx.call('GET', `/v1/accounts/${us.id}/payment-methods`)).body.data[0];
  t.equal(usCard.mandate, null, 'no e-mandate outside India');
});

t.test('removing: not the default while others exist, not the only method of a live subscription', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const [first] = (await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`)).body.data;
  const only = await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${first.id}`, { key: ctx.keys.write });
  t.equal(only.status, 409);
  t.equal(only.body.code, 'payment_method_in_use');

  const second = (await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { body: { paymentMethod: card('tok_rupay') } })).body;
  t.equal(second.isDefault, false, 'not the default unless asked');
  const busyDefault = await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${first.id}`);
  t.equal(busyDefault.body.code, 'payment_method_is_default');
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods/${second.id}/default`)).status, 200);
  t.equal((await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${first.id}`)).status, 204);
  const left = (await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`)).body.data;
  t.same(left.map((m: any) => [m.id, m.isDefault]), [[second.id, true]]);
  t.equal((await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${first.id}`)).status, 404, 'gone');
});

t.test('payment methods: every route refuses a missing key, the wrong scope, and another account\'s key', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const other = await paidAccount(ctx, 100000);
  const [method] = (await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`)).body.data;
  const otherKey = await ctx.key(['read', 'write'], other.id);
  const routes: Array<[string, string, object | undefined]> = [
    ['GET', `/v1/accounts/${account.id}/payment-methods`, undefined],
    ['POST', `/v1/accounts/${account.id}/payment-methods`, { paymentMethod: card('tok_visa') }],
    ['POST', `/v1/accounts/${account.id}/payment-methods/${method.id}/default`, undefined],
    ['DELETE', `/v1/accounts/${account.id}/payment-methods/${method.id}`, undefined],
  ];
  for (const [method_, url, body] of routes) {
    t.equal((await ctx.call(method_ as never, url, { key: null, body })).status, 401, `${method_} ${url} without a key`);
    t.equal((await ctx.call(method_ as never, url, { key: otherKey, body })).status, 404, `${method_} ${url} with another account's key`);
    if (method_ !== 'GET') t.equal((await ctx.call(method_ as never, url, { key: ctx.keys.read, body })).status, 403, `${method_} ${url} with a read key`);
  }
  // A method of another account is not this account's.
  const [theirs] = (await ctx.call('GET', `/v1/accounts/${other.id}/payment-methods`)).body.data;
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods/${theirs.id}/default`)).body.code, 'payment_method_not_found');
});

t.test('auto-recharge goes by the method\'s own e-mandate: more when the customer authenticated more; one it does not cover waits for the customer as an invoice they pay', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const account = await paidAccount(ctx, 100000);
  const setRecharge = (amount: number) => ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 200000, amount } });
  const twentyThousand = 2_000_000; // INR 20,000 + GST: above the INR 15,000 cap
  t.equal((await setRecharge(twentyThousand)).body.code, 'invalid_auto_recharge', 'the card\'s mandate is the cap');

  const upi = await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, {
    body: { paymentMethod: { type: 'upi', vpa: 'success@upi' }, makeDefault: true, mandate: { maxAmount: 5_000_000, authenticated: true } },
  });
  t.equal(upi.status, 201);
  const set = await setRecharge(twentyThousand);
  t.equal(set.status, 200, 'the UPI mandate authenticated for INR 50,000 covers it');
  const balanceBefore = (await ctx.query('select balance from credit_balances where account_id = $1', [account.id])).rows[0].balance;

  // Time passes and the mandate ends: the recharge is not attempted and is no decline; its invoice waits for the customer.
  await ctx.query('update payment_methods set mandate_valid_until = $2 where id = $1', [upi.body.id, new Date(ctx.clock.now().getTime() - 86_400_000)]);
  t.equal(await ctx.services.purchases.recharge(account.id), 'skipped');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'recharge'")).rows[0].n, 0, 'nothing charged, nothing declined');
  t.equal((await ctx.query('select enabled from auto_recharge_settings where account_id = $1', [account.id])).rows[0].enabled, true, 'auto-recharge stays on');
  t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'credits.recharge_failed'")).rows[0].n, 0, 'no failure reported');
  const asked = (await ctx.query("select payload from outbox where type = 'invoice.requires_action' and account_id = $1", [account.id])).rows;
  t.equal(asked.length, 1);
  t.match(asked[0].payload, { kind: 'credits', reason: 'mandate_expired', total: 2_360_000, currency: 'INR' });
  const invoice = (await ctx.call('GET', `/v1/invoices/${asked[0].payload.invoiceId}`)).body;
  t.match(invoice, { status: 'requires_action', total: 2_360_000, actionRequired: { reason: 'mandate_expired' } });

  // Due again while that invoice waits: no second invoice.
  await ctx.query('update auto_recharge_settings set next_attempt_at = $2 where account_id = $1', [account.id, ctx.clock.now()]);
  t.equal(await ctx.services.purchases.recharge(account.id), 'skipped');
  t.equal((await ctx.query("select count(*)::int as n from invoices where kind = 'credits' and status = 'open'")).rows[0].n, 1, 'one invoice waits');

  // The customer pays it by card (attended: no mandate needed); a retry of the same request answers the same.
  const pay = () =>
    ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { body: { paymentMethod: { type: 'card', token: 'tok_mastercard' } }, headers: { 'idempotency-key': `recharge-${invoice.id}` } });
  const paid = await pay();
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.match(paid.body.invoice, { id: invoice.id, status: 'paid' });
  t.same((await pay()).body.invoice.id, invoice.id, 'the retry answers the same');
  const balanceAfter = (await ctx.query('select balance from credit_balances where account_id = $1', [account.id])).rows[0].balance;
  t.equal(balanceAfter - balanceBefore, twentyThousand, 'credited once');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'recharge' and status = 'succeeded'")).rows[0].n, 1, 'charged once');
  t.equal((await ctx.query("select count(*)::int as n from invoices where kind = 'credits'")).rows[0].n, 1, 'no second invoice issued for it');
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { body: {}, headers: { 'idempotency-key': 'again' } })).body.code, 'invoice_not_payable');
});

t.test('ops record a bank transfer against an auto-recharge invoice waiting for the customer: the credits are added once', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const account = await paidAccount(ctx, 100000);
  t.equal((await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 200000, amount: 500000 } })).status, 200);
  await ctx.query('update payment_methods set mandate_valid_until = $2 where account_id = $1', [account.id, new Date(ctx.clock.now().getTime() - 1000)]);
  await ctx.query('update auto_recharge_settings set next_attempt_at = $2 where account_id = $1', [account.id, ctx.clock.now()]);
  t.equal(await ctx.services.purchases.recharge(account.id), 'skipped');
  const { rows } = await ctx.query("select id, total from invoices where kind = 'credits' and status = 'open' and account_id = $1", [account.id]);
  t.equal(rows.length, 1);
  const before = (await ctx.query('select balance from credit_balances where account_id = $1', [account.id])).rows[0].balance;
  const record = () => ctx.call('POST', `/v1/invoices/${rows[0].id}/offline-payments`, { key: ctx.keys.ops, body: { reference: 'NEFT HDFC0001', methodType: 'wire_transfer', amount: Number(rows[0].total) } });
  const recorded = await record();
  t.equal(recorded.status, 200, JSON.stringify(recorded.body));
  t.match(recorded.body, { invoice: { status: 'paid' }, payment: { purpose: 'recharge', offlineReference: 'NEFT HDFC0001' } });
  t.equal((await record()).body.payment.id, recorded.body.payment.id, 'the same reference again answers the same');
  const after = (await ctx.query('select balance from credit_balances where account_id = $1', [account.id])).rows[0].balance;
  t.equal(after - before, 500000, 'credited once');
  t.equal((await ctx.query('select status from invoices where id = $1', [rows[0].id])).rows[0].status, 'paid');
  const listed = (await ctx.call('GET', `/v1/accounts/${account.id}/payment-methods`)).body.data;
  t.same(listed.map((m: any) => m.type), ['card'], 'the transfer is how money came, not a saved method');
});

t.test('a method saved while paying is saved once however often the request is retried', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const id = 'pm_retriedrequest0000000000a';
  const first = await ctx.services.paymentMethods.add(account.id, { paymentMethod: card('tok_mastercard') }, { id });
  const again = await ctx.services.paymentMethods.add(account.id, { paymentMethod: card('tok_mastercard') }, { id });
  t.same(again, first, 'the retry finds the method the first attempt saved');
  t.equal((await ctx.query("select count(*)::int as n from payment_methods where account_id = $1 and label = 'mastercard'", [account.id])).rows[0].n, 1, 'one row');
  t.equal((await ctx.query("select count(*)::int as n from sandbox_payment_methods where idempotency_key = $1", [id])).rows[0].n, 1, "saved with the gateway once");
});

t.test('a removed method is never charged again; a method with a payment open cannot be removed', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const account = await paidAccount(ctx, 100000);
  const b = (await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { body: { paymentMethod: card('tok_mastercard') } })).body;
  t.equal((await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 1000, amount: 50000, paymentMethod: undefined } })).status, 200);
  await ctx.query('update auto_recharge_settings set payment_method_id = $2, enabled = false where account_id = $1', [account.id, b.id]);
  t.equal((await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${b.id}`)).status, 204, 'auto-recharge is off: removable');
  const bought = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { body: { amount: 10000 }, headers: { 'idempotency-key': 'after-remove' } });
  t.equal(bought.status, 201);
  const charged = (await ctx.query('select payment_method_id from payments where id = $1', [bought.body.payment.id])).rows[0].payment_method_id;
  t.not(charged, b.id, 'not the removed card');

  // A card whose charge is awaited (its answer lost) cannot be removed until it settles.
  const c = (await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { body: { paymentMethod: card('tok_timeout') } })).body;
  const lost = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { body: { amount: 10000, paymentMethod: card('tok_timeout') }, headers: { 'idempotency-key': 'lost' } });
  t.equal(lost.status, 202);
  const lostMethod = (await ctx.query('select payment_method_id from payments where id = $1', [lost.body.payment.id])).rows[0].payment_method_id;
  t.equal((await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${lostMethod}`)).body.code, 'payment_method_in_use');
  t.equal((await ctx.call('DELETE', `/v1/accounts/${account.id}/payment-methods/${c.id}`)).status, 204, 'the one with nothing open goes');
});

t.test('a pre-debit notice covers the method it named: a new default Indian card gets its own before it is charged', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const { rows } = await ctx.query('select id, current_period_end from subscriptions where account_id = $1', [account.id]);
  const [sub, end] = [rows[0].id, rows[0].current_period_end as Date];
  ctx.clock.set(new Date(end.getTime() - 23 * 3_600_000));
  t.equal(await ctx.services.renewals.sendRenewalNotice(sub, end), 'sent', 'the notice for the visa card');
  const added = await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { body: { paymentMethod: card('tok_mastercard'), makeDefault: true } });
  t.equal(added.status, 201);

  ctx.clock.set(new Date(end.getTime() + 60_000));
  t.equal(await ctx.services.renewals.renew(sub, end), 'invoiced', 'not charged on the visa card\'s notice');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'renewal'")).rows[0].n, 0, 'nothing charged yet');
  const notices = (await ctx.query("select payload from outbox where type = 'subscription.renewal_notice' order by id")).rows;
  t.equal(notices.length, 2, 'a second notice, for the mastercard');
  const invoice = (await ctx.query("select id, attempt_count, next_attempt_at from invoices where kind = 'renewal' and account_id = $1", [account.id])).rows[0];
  t.equal(invoice.next_attempt_at.getTime(), end.getTime() + 60_000 + 24 * 3_600_000, 'charged once its window has passed');

  ctx.clock.set(invoice.next_attempt_at);
  t.equal(await ctx.services.renewals.retry(invoice.id, invoice.attempt_count), 'charged');
  const charged = (await ctx.query("select payment_method_id, status from payments where purpose = 'renewal'")).rows;
  t.same(charged, [{ payment_method_id: added.body.id, status: 'succeeded' }], 'the mastercard, once');
});
