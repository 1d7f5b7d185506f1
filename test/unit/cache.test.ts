import t from 'tap';
import { parseChange } from '../../src/db/change-feed.js';
import { InvalidatedCache } from '../../src/lib/cache.js';

/** A load the test finishes by hand, to interleave it with invalidations. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const cache = (trusted = () => true, max = 100) => new InvalidatedCache<string>({ max, ttlMs: 60_000, trusted });

t.test('a hit does not load; concurrent misses share one load', async (t) => {
  const c = cache();
  let loads = 0;
  const load = async () => `v${++loads}`;
  t.same(await Promise.all([c.get('a', load), c.get('a', load)]), ['v1', 'v1']);
  t.equal(await c.get('a', load), 'v1');
  t.equal(loads, 1);
});

t.test('a load overtaken by an invalidation answers its caller but is not kept', async (t) => {
  const c = cache();
  const slow = deferred<string>();
  const first = c.get('a', () => slow.promise);
  c.invalidate('a');
  // A get after the invalidation must not join the load that started before it.
  t.equal(await c.get('a', async () => 'fresh'), 'fresh');
  slow.resolve('stale');
  t.equal(await first, 'stale');
  t.equal(c.peek('a'), 'fresh', 'the stale load did not overwrite the fresh value');

  const slow2 = deferred<string>();
  const second = c.get('b', () => slow2.promise);
  c.clear();
  slow2.resolve('stale');
  await second;
  t.equal(c.peek('b'), undefined, 'a clear also discards loads in flight');
});

t.test('untrusted (no change feed): every get loads, nothing is kept; null and unkept values are not stored', async (t) => {
  let trusted = false;
  const c = cache(() => trusted);
  let loads = 0;
  await c.get('a', async () => `v${++loads}`);
  await c.get('a', async () => `v${++loads}`);
  t.equal(loads, 2);
  trusted = true;
  t.equal(await c.get('n', async () => null), null);
  await c.get('x', async () => 'test clock', () => false);
  t.equal(c.size, 0);
});

t.test('bounded: the oldest entry goes first', async (t) => {
  const c = cache(() => true, 2);
  for (const k of ['a', 'b', 'c']) await c.get(k, async () => k);
  t.same([c.peek('a'), c.peek('b'), c.peek('c')], [undefined, 'b', 'c']);
});

t.test('change payloads', async (t) => {
  t.same(parseChange('account:acc_1'), { kind: 'account', accountId: 'acc_1' });
  t.same(parseChange('balance:acc_1'), { kind: 'balance', accountId: 'acc_1' });
  t.same(parseChange('key:key_1'), { kind: 'key', keyId: 'key_1' });
  t.same(parseChange('catalog'), { kind: 'catalog' });
  t.same(parseChange('reset'), { kind: 'reset' });
  t.equal(parseChange('bogus:1'), null);
  t.equal(parseChange('account:'), null);
});
