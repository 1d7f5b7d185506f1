import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { testClocks } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';

export interface TestClockDto {
  id: string;
  name: string;
  frozenTime: Date;
  status: 'ready' | 'advancing';
  pendingWork: number;
}

/**
 * Stripe-style test clocks. Advancing moves the frozen time; the workers then do what fell
 * due (renewals, cancellations, dunning retries) exactly as for real time, and the call
 * waits until they are done, or answers `advancing` when they take longer than `waitMs`.
 */
export function createTestClocksService(deps: { db: Db; clock: Clock; enabled: boolean; pendingOnClock: (id: string) => Promise<number>; waitMs?: number }) {
  const { db } = deps;

  function assertEnabled() {
    if (!deps.enabled) throw new AppError('test_clocks_disabled', 'Set TEST_CLOCKS_ENABLED=true (never in production)');
  }

  async function find(id: string) {
    assertEnabled();
    const [row] = await db.select().from(testClocks).where(eq(testClocks.id, id));
    if (!row) throw new AppError('test_clock_not_found', `No test clock ${id}`);
    return row;
  }

  async function toDto(row: typeof testClocks.$inferSelect): Promise<TestClockDto> {
    const pendingWork = await deps.pendingOnClock(row.id);
    return { id: row.id, name: row.name, frozenTime: row.frozenTime, status: pendingWork ? 'advancing' : 'ready', pendingWork };
  }

  async function create(input: { name: string; frozenTime: Date }) {
    assertEnabled();
    const [row] = await db
      .insert(testClocks)
      .values({ id: newId('clk', deps.clock.now()), name: input.name, frozenTime: input.frozenTime, createdAt: deps.clock.now() })
      .returning();
    return toDto(row!);
  }

  async function get(id: string) {
    return toDto(await find(id));
  }

  async function advance(id: string, to: Date) {
    const current = await find(id);
    if (to < current.frozenTime) throw new AppError('test_clock_backwards', `The clock is at ${current.frozenTime.toISOString()}`);
    const [row] = await db.update(testClocks).set({ frozenTime: to }).where(eq(testClocks.id, id)).returning();
    const deadline = Date.now() + (deps.waitMs ?? 30_000);
    while ((await deps.pendingOnClock(id)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return toDto(row!);
  }

  return { create, get, advance, find };
}

export type TestClocksService = ReturnType<typeof createTestClocksService>;
