import t from 'tap';
import { FailureBudget } from '../../src/lib/failure-budget.js';

const budget = (perWindow: number, maxAddresses = 100) => {
  let now = 120_000; // the start of a window
  const b = new FailureBudget({ perWindow, maxAddresses, now: () => now });
  return { b, at: (ms: number) => (now = ms) };
};

t.test('an address is over its budget after perWindow failures, until the window ends', async (t) => {
  const { b, at } = budget(3);
  for (let i = 0; i < 3; i++) {
    t.equal(b.retryAfter('1.2.3.4'), 0, `within budget before failure ${i + 1}`);
    b.fail('1.2.3.4');
  }
  t.equal(b.retryAfter('1.2.3.4'), 60, 'a whole minute to wait at the window start');
  t.equal(b.retryAfter('5.6.7.8'), 0, 'another address is not affected');
  at(120_000 + 45_500);
  t.equal(b.retryAfter('1.2.3.4'), 15, 'rounded up to whole seconds');
  at(180_000);
  t.equal(b.retryAfter('1.2.3.4'), 0, 'a new window starts afresh');
  t.equal(b.size, 0, 'and keeps nothing of the last');
});

t.test('a flood of addresses cannot grow it past maxAddresses: the oldest goes', async (t) => {
  const { b } = budget(1, 10);
  for (let i = 0; i < 1000; i++) b.fail(`10.0.${i >> 8}.${i & 255}`);
  t.equal(b.size, 10);
  t.equal(b.retryAfter('10.0.3.231'), 60, 'the newest are kept');
  t.equal(b.retryAfter('10.0.0.0'), 0, 'the oldest were evicted');
});
