import t from 'tap';
import { yieldToRenewals } from '../../src/jobs/yield.js';

/** A renewals queue whose counts the test sets, and an email worker that records pause and resume. */
function fakes() {
  const state = { counts: { waiting: 0, active: 0, prioritized: 0 } as Record<string, number>, failing: false, calls: [] as string[] };
  const renewals = {
    getJobCounts: async () => {
      if (state.failing) throw new Error('Redis away');
      return state.counts;
    },
  };
  const emails = {
    pause: async () => void state.calls.push('pause'),
    resume: () => void state.calls.push('resume'),
  };
  return { state, renewals: renewals as never, emails: emails as never };
}

t.test('emails pause while renewal jobs wait or run, and resume when the queue is empty', async (t) => {
  const f = fakes();
  const y = yieldToRenewals({ renewals: f.renewals, emails: f.emails, pollMs: 60_000 });
  t.teardown(() => y.stop());
  await y.check();
  t.same(f.state.calls, [], 'an idle queue: emails run');
  f.state.counts.active = 1;
  await y.check();
  t.ok(y.paused);
  await y.check();
  t.same(f.state.calls, ['pause'], 'paused once, not again');
  f.state.counts.active = 0;
  await y.check();
  t.notOk(y.paused);
  t.same(f.state.calls, ['pause', 'resume']);
});

t.test('never longer than the longest pause, and never while the queue cannot be read', async (t) => {
  const f = fakes();
  const y = yieldToRenewals({ renewals: f.renewals, emails: f.emails, pollMs: 60_000, maxPauseMs: 0 });
  t.teardown(() => y.stop());
  f.state.counts.waiting = 5;
  await y.check();
  t.ok(y.paused);
  await y.check();
  t.notOk(y.paused, 'the longest pause is over: emails run although renewals still wait');

  const h = fakes();
  const w = yieldToRenewals({ renewals: h.renewals, emails: h.emails, pollMs: 60_000, maxPauseMs: 60_000 });
  t.teardown(() => w.stop());
  h.state.counts.active = 1;
  const realNow = Date.now;
  t.teardown(() => void (Date.now = realNow));
  let now = realNow();
  Date.now = () => now;
  await w.check();
  t.ok(w.paused);
  now += 60_000;
  await w.check();
  t.notOk(w.paused, 'a minute paused: emails run');
  now += 1_000;
  await w.check();
  t.notOk(w.paused, '...and keep running a while before pausing again');
  now += 15_000;
  await w.check();
  t.ok(w.paused, 'then yield again');

  const g = fakes();
  const z = yieldToRenewals({ renewals: g.renewals, emails: g.emails, pollMs: 60_000 });
  t.teardown(() => z.stop());
  g.state.counts.waiting = 1;
  await z.check();
  g.state.failing = true;
  await z.check();
  t.notOk(z.paused, 'Redis away: emails run (they fail and retry on their own)');
  z.stop();
  t.same(g.state.calls, ['pause', 'resume']);
});
