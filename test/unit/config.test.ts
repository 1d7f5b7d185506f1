import t from 'tap';
import { loadConfig, migratesOnStart, usesEmbeddedDatabase } from '../../src/config.js';

t.test('defaults give a working development config', async (t) => {
  const config = loadConfig({});
  t.equal(config.PORT, 3000);
  t.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
  t.equal(config.DATA_DIR, './.data');
  t.ok(usesEmbeddedDatabase(config));
  t.ok(migratesOnStart(config), 'the embedded database migrates itself');
  t.ok(Object.isFrozen(config));
  const pgConfig = loadConfig({ DATABASE_URL: 'postgres://billing@db:5432/billing' });
  t.notOk(migratesOnStart(pgConfig), 'Postgres is migrated by `npm run migrate`');
  t.ok(migratesOnStart(loadConfig({ DATABASE_URL: 'postgres://billing@db/billing', MIGRATE_ON_START: 'true' })));
});

const bad: Array<[Record<string, string>, RegExp]> = [
  [{ PORT: 'abc' }, /^Invalid configuration: PORT: .*\(got "abc"\)$/],
  [{ PORT: '70000' }, /^Invalid configuration: PORT: /],
  [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL: /],
  [{ DATABASE_URL: 'mysql://x' }, /^Invalid configuration: DATABASE_URL: must be a postgres/],
  [{ REDIS_URL: 'localhost:6379' }, /^Invalid configuration: REDIS_URL: must be a redis/],
  [{ REDIS_URL: 'redis+cluster://10.0.0.1' }, /^Invalid configuration: REDIS_URL: must name each cluster node as host:port/],
  [{ REDIS_URL: 'redis+cluster://10.0.0.1:7000/2' }, /^Invalid configuration: REDIS_URL: must be redis\+cluster:.*only database 0/],
  [{ SMTP_URL: 'http://mail' }, /^Invalid configuration: SMTP_URL: /],
  [{ BOOTSTRAP_API_KEY: 'short' }, /^Invalid configuration: BOOTSTRAP_API_KEY: .*\(got "\[redacted\]"\)$/],
  [{ TRIAL_WHITELIST_LIMIT: '0' }, /^Invalid configuration: TRIAL_WHITELIST_LIMIT: /],
];

for (const [env, message] of bad) {
  t.test(`refuses ${JSON.stringify(env)} with one line naming the variable`, async (t) => {
    t.throws(() => loadConfig(env), message);
    try {
      loadConfig(env);
    } catch (err) {
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  });
}

t.test('REDIS_URL redis+cluster:// names the nodes; on a cluster the queue prefix gets a hash tag', async (t) => {
  const { parseClusterUrl } = await import('../../src/lib/redis.js');
  t.same(parseClusterUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002'), {
    tls: false,
    nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '::1', port: 7002 }],
  });
  t.same(parseClusterUrl('rediss+cluster://app:p%40ss@cache.internal:6379/'), { tls: true, nodes: [{ host: 'cache.internal', port: 6379 }], username: 'app', password: 'p@ss' });
  t.same(parseClusterUrl('redis+cluster://:secret@h:1'), { tls: false, nodes: [{ host: 'h', port: 1 }], password: 'secret' });
  const cluster = 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001';
  t.equal(loadConfig({ REDIS_URL: cluster }).QUEUE_PREFIX, '{billing}', 'billing becomes {billing}');
  t.equal(loadConfig({ REDIS_URL: cluster, QUEUE_PREFIX: '{billing}' }).QUEUE_PREFIX, '{billing}', 'a hash tag is kept');
  t.equal(loadConfig({ REDIS_URL: cluster, QUEUE_PREFIX: 'eu-{billing}' }).QUEUE_PREFIX, 'eu-{billing}', 'wherever it is');
  t.equal(loadConfig({ REDIS_URL: cluster, QUEUE_PREFIX: 'a{}b' }).QUEUE_PREFIX, '{a{}b}', 'an empty {} is no hash tag to Redis');
  t.equal(loadConfig({ QUEUE_PREFIX: 'billing' }).QUEUE_PREFIX, 'billing', 'one Redis: the prefix as given');
  try {
    loadConfig({ REDIS_URL: 'redis+cluster://u:hunter2@h:1,h', PORT: 'x' });
  } catch (err) {
    t.notMatch((err as Error).message, /hunter2/, 'the password is not echoed');
  }
});

t.test('a password in a URL is not echoed', async (t) => {
  t.throws(() => loadConfig({ DATABASE_URL: 'postgres://u:hunter2@db/x', PORT: 'x' }), /PORT/);
  try {
    loadConfig({ REDIS_URL: 'http://u:hunter2@host' });
  } catch (err) {
    t.notMatch((err as Error).message, /hunter2/);
  }
});

t.test('production needs Postgres and SMTP', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production', SMTP_URL: 'smtp://mail:25' }), /^Invalid configuration: DATABASE_URL: is required when NODE_ENV=production/);
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://b@db/b' }), /^Invalid configuration: SMTP_URL: is required/);
  const seller = { SELLER_LEGAL_NAME: 'Seller Private Limited', SELLER_ADDRESS: '1 MG Road, Bengaluru 560001', SELLER_GSTIN: '29AABCE1234F1Z1' };
  const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgres://b@db/b', SMTP_URL: 'smtp://mail:25', SECRETS_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
  t.throws(() => loadConfig(prod), /^Invalid configuration: SELLER_LEGAL_NAME: is required when NODE_ENV=production/, 'no example seller on real invoices');
  t.ok(loadConfig({ ...prod, ...seller }));
  t.throws(() => loadConfig({ ...prod, ...seller, SELLER_GSTIN: '29AABCE1234F1Z2' }), /^Invalid configuration: SELLER_GSTIN: The check character is 1, expected|SELLER_GSTIN: .*check character/, 'the seller\'s GSTIN is checked at start');
  t.throws(() => loadConfig({ TAX_RATES: 'IN:1801' }), /TAX_RATES: must give IN an even number/);
});
