import t, { type Test } from 'tap';
import { createAccount, paidAccount, setup, writeCounts, type TestContext } from './helper.js';

type Res = Awaited<ReturnType<TestContext['call']>>;

/** 400 problem+json malformed_request, naming where the problem is. */
function assertMalformed(t: Test, res: Res, detail: RegExp) {
  t.equal(res.status, 400, 'answers 400');
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'as problem+json');
  t.equal(res.body.code, 'malformed_request');
  t.match(res.body.detail, detail);
}

/** Everything a refused request might have written: the money tables, the outbox, audit and idempotency records, accounts. */
async function allCounts(ctx: TestContext) {
  const counts = await writeCounts(ctx);
  for (const table of ['accounts', 'audit_events', 'idempotency_keys']) counts[table] = (await ctx.query(`select count(*)::int as n from ${table}`)).rows[0].n;
  return counts;
}

const deepObject = '{"a":'.repeat(20000) + '1' + '}'.repeat(20000);
const deepArray = '['.repeat(20000) + '1' + ']'.repeat(20000);
const json = { 'content-type': 'application/json' };

t.test('V8 parses 20,000 levels of nesting: the refusal is ours, not a parser failure', async (t) => {
  t.ok(deepObject.length > 100_000, 'about 100 KB, well under the body limit');
  t.doesNotThrow(() => JSON.parse(deepObject));
  t.doesNotThrow(() => JSON.parse(deepArray));
});

t.test('a body of objects nested 20,000 deep is 400, not a stack overflow', async (t) => {
  const ctx = await setup(t);
  const before = await allCounts(ctx);
  const res = await ctx.call('POST', '/v1/accounts', { body: deepObject, headers: json });
  assertMalformed(t, res, /^The body is nested more than 32 levels deep/);
  t.same(await allCounts(ctx), before, 'nothing written');
});

t.test('a body of arrays nested 20,000 deep is 400, not a stack overflow', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const before = await allCounts(ctx);
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: deepArray, headers: { ...json, 'idempotency-key': 'deep-array' } });
  assertMalformed(t, res, /^The body is nested more than 32 levels deep/);
  t.same(await allCounts(ctx), before, 'nothing written');
});

t.test('a lone surrogate in a credit adjustment\'s reason is 400 and writes nothing', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const before = await allCounts(ctx);
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, {
    body: { amount: 500, reason: 'abc\ud800def' },
    headers: { 'idempotency-key': 'lone-surrogate' },
  });
  assertMalformed(t, res, /^Text in the body contains a lone UTF-16 surrogate.*body\.reason/);
  t.same(await allCounts(ctx), before, 'no ledger entry, outbox event, audit or idempotency record');
});

t.test('a lone surrogate in a KYC rejection reason is 400 and leaves KYC as it was', async (t) => {
  const ctx = await setup(t);
  const account = await createAccount(ctx);
  t.equal((await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'submitted' } })).status, 200);
  const before = await allCounts(ctx);
  const res = await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'rejected', reason: 'blurry \udc00 scan' } });
  assertMalformed(t, res, /^Text in the body contains a lone UTF-16 surrogate.*body\.reason/);
  t.same(await allCounts(ctx), before, 'nothing written');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).body.kyc.status, 'submitted');
});

t.test('a lone surrogate in a key name is refused, although validation would drop the key', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const before = await allCounts(ctx);
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, {
    body: { amount: 500, reason: 'goodwill credit', ['note\ud800']: 'x' },
    headers: { 'idempotency-key': 'lone-surrogate-key' },
  });
  assertMalformed(t, res, /^Text in the body contains a lone UTF-16 surrogate/);
  t.same(await allCounts(ctx), before, 'nothing written');
});

t.test('a surrogate or broken UTF-8 percent-encoded in the querystring is 400', async (t) => {
  const ctx = await setup(t);
  // %ED%A0%80 is U+D800 encoded as UTF-8 would encode it: not UTF-8. The parser would keep it as raw text.
  for (const query of ['type=%ED%A0%80', 'type=%E0%A4', 'type=100%']) {
    assertMalformed(t, await ctx.call('GET', `/v1/plans?${query}`), /^The querystring is not valid percent-encoded UTF-8/);
  }
  // A well-formed pair, percent-encoded, is fine.
  t.equal((await ctx.call('GET', '/v1/plans?x=%F0%9F%98%80')).status, 200);
});

t.test('a surrogate or broken UTF-8 percent-encoded in the path is 400 problem+json', async (t) => {
  const ctx = await setup(t);
  const account = await createAccount(ctx);
  for (const url of [`/v1/accounts/${account.id}/whitelisted-numbers/%ED%A0%80`, `/v1/accounts/${account.id}/whitelisted-numbers/%E0%A4`]) {
    const res = await ctx.call('DELETE', url);
    assertMalformed(t, res, /not valid percent-encoded UTF-8/);
    t.ok(res.body.requestId, 'with a request id');
  }
});

t.test('NUL is still refused, in the body, the querystring and the path', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const before = await allCounts(ctx);
  const body = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 500, reason: 'a\u0000b' }, headers: { 'idempotency-key': 'nul' } });
  assertMalformed(t, body, /^Text in the body contains a NUL character.*body\.reason/);
  assertMalformed(t, await ctx.call('GET', '/v1/plans?accountId=%00'), /^Text in the querystring contains a NUL character.*querystring\.accountId/);
  assertMalformed(t, await ctx.call('DELETE', `/v1/accounts/${account.id}/whitelisted-numbers/%00`), /^Text in the params contains a NUL character \(at params\.number\)/);
  t.same(await allCounts(ctx), before, 'nothing written');
});

t.test('a body that is not valid UTF-8 is 400, not stored with replacement characters', async (t) => {
  const ctx = await setup(t);
  const before = await allCounts(ctx);
  const bytes = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from(' Pvt Ltd","email":"a@example.com","country":"IN"}')]);
  const res = await ctx.call('POST', '/v1/accounts', { body: bytes, headers: json });
  assertMalformed(t, res, /^The body is not valid UTF-8/);
  t.same(await allCounts(ctx), before, 'nothing written');
  const ok = await ctx.call('POST', '/v1/accounts', { body: Buffer.from(JSON.stringify({ name: 'नमस्ते टेलीकॉम', email: 'a@example.com', country: 'IN' })), headers: json });
  t.equal(ok.status, 201, 'valid UTF-8 (Devanagari) is fine');
  t.equal(ok.body.name, 'नमस्ते टेलीकॉम');
});

t.test('a webhook filter naming an event type the service never sends is refused', async (t) => {
  const ctx = await setup(t, { WEBHOOK_ALLOWED_HOSTS: 'hooks.acme.example' });
  const account = await createAccount(ctx);
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: 'https://hooks.acme.example/b', eventTypes: ['invoice.payed'] } });
  t.equal(res.status, 400);
  t.equal(res.body.code, 'validation_failed');
  t.match(res.body.detail, /eventTypes/);
  t.equal((await ctx.query('select count(*)::int as n from webhook_endpoints')).rows[0].n, 0);
});

t.test('what the HTTP parser refuses answers problem+json too: headers too large, malformed framing', async (t) => {
  const { connect } = await import('node:net');
  const ctx = await setup(t);
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = ctx.app.server.address() as { port: number };
  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
      let answer = '';
      const socket = connect(port, '127.0.0.1', () => socket.write(request));
      socket.on('data', (c) => (answer += c));
      socket.on('close', () => resolve(answer));
      socket.on('error', (err) => (answer ? resolve(answer) : reject(err)));
    });
  const parse = (answer: string) => {
    const [head, body] = answer.split('\r\n\r\n');
    return { status: Number(head!.split(' ')[1]), head: head!, body: JSON.parse(body!) };
  };

  const big = parse(await raw(`GET /v1/plans HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
  t.equal(big.status, 431);
  t.match(big.head, /Content-Type: application\/problem\+json/i);
  t.equal(big.body.code, 'headers_too_large');
  t.ok(big.body.requestId, 'with an id to quote');

  const longLine = parse(await raw(`GET /v1/plans?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
  t.equal(longLine.status, 414, 'a request line over the header limit is a URL too long');
  t.match(longLine.head, /Content-Type: application\/problem\+json/i);
  t.equal(longLine.body.code, 'uri_too_long');

  const framing = parse(await raw('POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'));
  t.equal(framing.status, 400);
  t.equal(framing.body.code, 'malformed_request');
  t.equal(framing.body.type, 'urn:billing-service:problem:malformed_request');
});

/** Status, problem+json and code of an answer the framework makes on its own. */
function assertProblem(t: Test, res: Res, status: number, code: string) {
  t.equal(res.status, status, `answers ${status}`);
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'as problem+json');
  t.equal(res.body.code, code);
  t.equal(res.body.status, status, 'the body names the status');
  t.ok(res.body.requestId, 'with a request id');
}

t.test('what the framework refuses on its own is problem+json with a documented status and a stable code', async (t) => {
  const ctx = await setup(t);
  const account = await createAccount(ctx);
  const adjust = `/v1/accounts/${account.id}/credits/adjustments`;
  const before = await allCounts(ctx);

  assertProblem(t, await ctx.call('GET', '/v1/accounts/%E0%A4'), 400, 'malformed_request');
  const longParam = await ctx.call('GET', `/v1/accounts/acc_${'a'.repeat(200)}`);
  assertProblem(t, longParam, 414, 'uri_too_long');
  t.notMatch(longParam.body.detail, /aaaa/, 'the refusal does not echo the path');
  assertProblem(t, await ctx.call('GET', `/v1/plans?q=${'a'.repeat(9000)}`), 414, 'uri_too_long');
  assertProblem(t, await ctx.call('GET', `/healthz?q=${'a'.repeat(9000)}`, { key: null }), 414, 'uri_too_long');

  const post = (payload: string, headers: Record<string, string>) =>
    ctx.app.inject({ method: 'POST', url: adjust, payload, headers: { authorization: `Bearer ${ctx.keys.ops}`, 'idempotency-key': `k-${Math.random()}`, ...headers } });
  const asRes = (r: Awaited<ReturnType<typeof post>>): Res => ({ status: r.statusCode, body: r.json(), headers: r.headers });
  assertProblem(t, asRes(await post('{"amount": 5,', json)), 400, 'malformed_request');
  assertProblem(t, asRes(await post(JSON.stringify({ amount: 5, reason: 'x'.repeat(1024 * 1024 + 10) }), json)), 413, 'payload_too_large');
  assertProblem(t, asRes(await post('amount=5', { 'content-type': 'application/x-www-form-urlencoded' })), 415, 'unsupported_media_type');
  assertProblem(t, asRes(await post('amount 5', { 'content-type': 'text/plain' })), 415, 'unsupported_media_type');
  t.same(await allCounts(ctx), before, 'nothing was written');
  // A content type and no body at all: no body. A route that needs one says so; one that takes none goes ahead.
  const empty = asRes(await post('', json));
  assertProblem(t, empty, 400, 'validation_failed');
  const made = await ctx.call('POST', '/v1/api-keys', { body: { name: 'to revoke', scopes: ['read'] } });
  const revoke = await ctx.app.inject({ method: 'DELETE', url: `/v1/api-keys/${made.body.id}`, headers: { authorization: `Bearer ${ctx.keys.ops}`, ...json } });
  t.equal(revoke.statusCode, 200, 'a DELETE sent with Content-Type: application/json and no body is carried out');

  const doc = ctx.app.swagger() as any;
  const op = doc.paths['/v1/accounts/{accountId}/credits/adjustments'].post;
  for (const status of ['400', '413', '414', '415']) t.ok(op.responses[status], `the document lists ${status}`);
  for (const status of ['400', '414']) t.ok(doc.paths['/healthz'].get.responses[status], `/healthz lists ${status}`);
});
