import { entryArgv } from './processes.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import t, { type Test } from 'tap';
import { desc, eq } from 'drizzle-orm';
import { outbox } from '../src/db/schema/index.js';
import { developmentKeyRing, parseKeyRing, type SecretKey } from '../src/lib/secret-box.js';
import { createKeyHasher } from '../src/modules/auth/domain.js';
import { createAuthService } from '../src/modules/auth/service.js';
import { createServices } from '../src/services.js';
import { paidAccount, setup, type TestContext } from './helper.js';

const env = { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const devKey = `dev-insecure:${developmentKeyRing[0]!.key.toString('base64')}`;
/** SECRETS_KEYS after a rotation: a new first key, the development key kept to open old values. */
const rotatedKeys = `k2:${randomBytes(32).toString('base64')},${devKey}`;
const ring = (keys: string) => parseKeyRing(keys) as SecretKey[];

/** A receiver on loopback that keeps what it gets. */
async function receiver(t: Test) {
  const received: Array<{ headers: Record<string, string>; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body });
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

/** Fans the account's newest event out and delivers it now, with these services; returns what the receiver got. */
async function deliverLatest(t: Test, ctx: TestContext, services: ReturnType<typeof createServices>, accountId: string, hook: Awaited<ReturnType<typeof receiver>>) {
  const [event] = await ctx.database.db.select().from(outbox).where(eq(outbox.accountId, accountId)).orderBy(desc(outbox.id)).limit(1);
  await services.webhooks.fanOut(event!);
  const [due] = await services.webhooks.findDue();
  t.equal(await services.webhooks.deliver(due!.id, due!.attempt), 'succeeded');
  const got = hook.received.at(-1)!;
  return { body: got.body, headers: { 'webhook-id': got.headers['webhook-id']!, 'webhook-timestamp': got.headers['webhook-timestamp']!, 'webhook-signature': got.headers['webhook-signature']! } };
}

/** The services of a process started with this SECRETS_KEYS. */
const servicesWith = (ctx: TestContext, secretsKeys: string) =>
  createServices({ config: Object.freeze({ ...ctx.config, SECRETS_KEYS: ring(secretsKeys) }), database: ctx.database, clock: ctx.clock });

t.test('webhook secrets are sealed at rest: the row never holds the secret the API showed, and deliveries still verify', async (t) => {
  const ctx = await setup(t, env);
  const hook = await receiver(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'S', email: 's@example.com', country: 'IN' } })).body;
  const created = (await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: hook.url, eventTypes: [] } })).body;
  const row = async () => (await ctx.query('select secret, previous_secret from webhook_endpoints where id = $1', [created.id])).rows[0];
  const stored = await row();
  t.match(stored.secret, /^enc:v1:dev-insecure:/, 'sealed, naming its key');
  t.notOk(JSON.stringify(stored).includes(created.secret.slice(6)), 'the secret shown once is not in the row');

  const rotated = (await ctx.call('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`)).body;
  const after = await row();
  t.match(after.previous_secret, /^enc:v1:dev-insecure:/, 'the outgoing secret stays sealed');
  for (const secret of [created.secret, rotated.secret]) t.notOk(JSON.stringify(after).includes(secret.slice(6)), 'neither secret is in the row after rotate-secret');

  const delivered = await deliverLatest(t, ctx, ctx.services, account.id, hook);
  t.ok(new Webhook(rotated.secret).verify(delivered.body, delivered.headers), 'signed with the new secret');
  t.ok(new Webhook(created.secret).verify(delivered.body, delivered.headers), 'and, in its grace period, the old one');

  await ctx.query("update webhook_endpoints set secret = $2 where id = $1", [created.id, `${after.secret.slice(0, -8)}${after.secret.endsWith('AAAAAAAA') ? 'BBBBBBBB' : 'AAAAAAAA'}`]);
  await ctx.query("insert into outbox (event_id, type, account_id, payload, created_at) values ('evt_tampered', 'account.created', $1, '{}', now())", [account.id]);
  const [event] = await ctx.database.db.select().from(outbox).where(eq(outbox.eventId, 'evt_tampered'));
  await ctx.services.webhooks.fanOut(event!);
  const [tampered] = await ctx.services.webhooks.findDue();
  t.equal(await ctx.services.webhooks.deliver(tampered!.id, tampered!.attempt), 'retrying', 'a tampered sealed secret signs nothing');
  const { rows: [attempt] } = await ctx.query('select last_error from webhook_deliveries where id = $1', [tampered!.id]);
  t.equal(attempt.last_error, 'the signing secret could not be read', 'and the account sees no key detail');
});

t.test('a legacy plain secret keeps signing; secrets:rotate seals it, moves sealed ones to a new first key, and is idempotent', async (t) => {
  const ctx = await setup(t, env);
  const hook = await receiver(t);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'L', email: 'l@example.com', country: 'IN' } })).body;
  const legacy = (await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: hook.url, eventTypes: [] } })).body;
  const sealed = (await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: `${hook.url}?b`, eventTypes: ['plan.version_created'] } })).body;
  await ctx.query('update webhook_endpoints set secret = $2 where id = $1', [legacy.id, legacy.secret]);

  const before = await deliverLatest(t, ctx, ctx.services, account.id, hook);
  t.ok(new Webhook(legacy.secret).verify(before.body, before.headers), 'a plain legacy secret still signs');

  const rotatedServices = servicesWith(ctx, rotatedKeys);
  const first = await rotatedServices.secrets.rotate();
  t.same(first.webhooks, { resealed: 2, unreadable: [] }, 'the plain one and the one under the old key');
  const { rows } = await ctx.query('select id, secret from webhook_endpoints order by id');
  t.ok(rows.every((r: any) => r.secret.startsWith('enc:v1:k2:')), 'all under the new first key');
  t.notOk(JSON.stringify(rows).includes(legacy.secret.slice(6)), 'no plain secret left');
  t.same((await rotatedServices.secrets.rotate()).webhooks, { resealed: 0, unreadable: [] }, 'a second run changes nothing');

  await ctx.call('PUT', `/v1/accounts/${account.id}/kyc`, { key: ctx.keys.kyc, body: { status: 'submitted' } });
  const after = await deliverLatest(t, ctx, rotatedServices, account.id, hook);
  t.ok(new Webhook(legacy.secret).verify(after.body, after.headers), 'the same secret signs after the rotation');
  t.ok(sealed.secret, 'the other endpoint kept its secret too');
  const withoutOld = servicesWith(ctx, rotatedKeys.split(',')[0]!);
  t.same((await withoutOld.secrets.rotate()).webhooks, { resealed: 0, unreadable: [] }, 'the old key can go once nothing is under it');
});

t.test('npm run ops -- secrets:rotate: --json, audited, exit 0', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const ctx = await setup(t, env);
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'O', email: 'o@example.com', country: 'IN' } })).body;
  const endpoint = (await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { body: { url: 'http://127.0.0.1:9/x', eventTypes: [] } })).body;
  await ctx.query('update webhook_endpoints set secret = $2 where id = $1', [endpoint.id, endpoint.secret]);
  const root = new URL('..', import.meta.url).pathname;
  const run = spawnSync(process.execPath, [...entryArgv('src/cli/ops.ts'), 'secrets:rotate', '--json'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: ctx.config.DATABASE_URL, QUEUE_PREFIX: ctx.config.QUEUE_PREFIX, LOG_LEVEL: 'silent', SECRETS_KEYS: rotatedKeys },
    encoding: 'utf8',
  });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  t.equal(out.webhooks.resealed, 1);
  t.ok(out.apiKeys.byHashKid, 'API key hash forms are reported');
  t.match((await ctx.query('select secret from webhook_endpoints')).rows[0].secret, /^enc:v1:k2:/);
  const audited = await ctx.query("select actor_key_id, details from audit_events where action = 'secrets.rotate'");
  t.equal(audited.rows[0]?.actor_key_id, 'cli', 'audited like the other ops commands');
});

t.test('saved methods are kept as the provider\'s reference: no card token or full VPA anywhere in our tables', async (t) => {
  const ctx = await setup(t);
  const card = await paidAccount(ctx, 100000);
  const upi = await paidAccount(ctx, 100000, { paymentMethod: { type: 'upi', vpa: 'success@upi', app: 'phonepe' } });
  await ctx.call('POST', `/v1/accounts/${upi.id}/credits/purchases`, {
    body: { amount: 5000, paymentMethod: { type: 'card', token: 'tok_mastercard' } },
    headers: { 'idempotency-key': 'buy' },
  });
  const { rows } = await ctx.query('select account_id, type, reference, label from payment_methods');
  t.equal(rows.length, 3);
  t.ok(rows.every((r: any) => /^spm_[0-9a-z]{26}$/.test(r.reference)), 'every reference is a vault reference');
  t.same(rows.map((r: any) => `${r.type} ${r.label}`).sort(), ['card mastercard', 'card visa', 'upi su***@upi'], 'labels safe to show');
  const sub = (await ctx.call('GET', `/v1/accounts/${upi.id}/subscription`)).body;
  t.same(sub.paymentMethod, { type: 'upi', label: 'su***@upi' });

  // Every row of every table but the sandbox gateway's own, as text.
  const tables = (await ctx.query("select tablename from pg_tables where schemaname = 'public' and tablename not like 'sandbox\\_%'")).rows.map((r: any) => r.tablename);
  let everything = '';
  for (const table of tables) everything += (await ctx.query(`select coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') as rows from "${table}" t`)).rows[0].rows;
  for (const secret of ['tok_visa', 'tok_mastercard', 'success@upi']) t.notOk(everything.includes(secret), `${secret} is nowhere in our tables`);
  t.ok(card.id && everything.includes(card.id), 'the scan saw the data');
});

t.test('methods saved before the migration move to the vault and charge exactly as before', async (t) => {
  const ctx = await setup(t);
  const declining = await paidAccount(ctx, 100000);
  const paying = await paidAccount(ctx, 100000, { paymentMethod: { type: 'upi', vpa: 'success@upi' } });
  // The state before 0017: the instrument itself in payment_methods, an empty vault.
  await ctx.query("update payment_methods set reference = 'tok_chargeDeclined', label = 'card' where account_id = $1", [declining.id]);
  await ctx.query("update payment_methods set reference = 'success@upi', label = 'upi' where account_id = $1", [paying.id]);
  await ctx.query('delete from sandbox_payment_methods');
  const migration = readFileSync(new URL('../migrations/0017_secrets_at_rest.sql', import.meta.url), 'utf8');
  for (const statement of migration.split('--> statement-breakpoint').filter((s) => /^\s*(--.*\n\s*)*(INSERT|UPDATE)\b/.test(s))) await ctx.query(statement);

  const { rows } = await ctx.query('select account_id, reference, label from payment_methods order by account_id');
  t.ok(rows.every((r: any) => r.reference.startsWith('spm_pm_')), 'references into the vault');
  t.equal(rows.find((r: any) => r.account_id === paying.id).label, 'su***@upi', 'the VPA masked');
  t.equal((await ctx.query('select count(*)::int as n from sandbox_payment_methods')).rows[0].n, 2);
  const buy = (id: string) => ctx.call('POST', `/v1/accounts/${id}/credits/purchases`, { body: { amount: 5000 }, headers: { 'idempotency-key': `b-${id}` } });
  const declined = await buy(declining.id);
  t.equal(declined.status, 402);
  t.equal(declined.body.declineCode, 'card_declined', 'the moved card token is what is charged');
  t.equal((await buy(paying.id)).status, 201, 'the moved VPA pays');
});

t.test('API keys: not SHA-256 at rest, the bootstrap key included; an old-style row still works and is rewritten', async (t) => {
  const ctx = await setup(t);
  const created = await ctx.services.auth.createApiKey({ name: 'new', scopes: ['read'] });
  const bootstrap = 'bsk_chosen-by-the-operator-0123456789abcdef';
  await ctx.services.auth.registerBootstrapKey(bootstrap);
  const stored = (await ctx.query("select name, hash, hash_kid from api_keys where name in ('new', 'bootstrap') order by name")).rows;
  t.same(stored.map((r: any) => r.hash_kid), ['dev-insecure', 'dev-insecure']);
  t.not(stored[1].hash, sha256(created.key), 'a new key is not stored as its SHA-256');
  t.not(stored[0].hash, sha256(bootstrap), 'nor is the operator-chosen bootstrap key');
  t.equal((await ctx.call('GET', '/v1/plans', { key: bootstrap })).status, 200);

  // Rows written before the change: plain SHA-256, no hash_kid.
  const legacy = `bsk_${randomBytes(32).toString('base64url')}`;
  const unused = `bsk_${randomBytes(32).toString('base64url')}`;
  for (const [id, key] of [['key_legacy', legacy], ['key_unused', unused]]) {
    await ctx.query("insert into api_keys (id, name, prefix, hash, scopes, created_at) values ($1, 'old', 'bsk_xx', $2, '{read}', now())", [id, sha256(key!)]);
  }
  t.equal((await ctx.call('GET', '/v1/plans', { key: legacy })).status, 200, 'an old-style row authenticates');
  const used = (await ctx.query("select hash, hash_kid from api_keys where id = 'key_legacy'")).rows[0];
  t.equal(used.hash_kid, 'dev-insecure', 'rewritten in the current form on first use');
  t.not(used.hash, sha256(legacy));
  const rehashed = await ctx.services.auth.rehashLegacyKeys();
  t.equal(rehashed.rehashed, 1, 'the unused one is converted without its key');
  t.notOk(rehashed.byHashKid['legacy-sha256'], 'no SHA-256 row left');
  t.equal((await ctx.call('GET', '/v1/plans', { key: unused })).status, 200, 'and still authenticates');

  // SECRETS_KEYS rotated: keys under the old first key work and move to the new one when used.
  const rotated = createAuthService({ db: ctx.database.db, clock: ctx.clock, hasher: createKeyHasher(ring(rotatedKeys)) });
  t.ok(await rotated.authenticate(created.key), 'a key under the old first key authenticates');
  t.equal((await ctx.query('select hash_kid from api_keys where id = $1', [created.id])).rows[0].hash_kid, 'k2');
  t.equal(await rotated.authenticate(`bsk_${randomBytes(32).toString('base64url')}`), null, 'an unknown key is still refused');
});
