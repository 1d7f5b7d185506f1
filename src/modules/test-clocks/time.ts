import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { testClocks } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';

/**
 * An account's "now": its test clock's frozen time when it lives on one, else the Clock.
 * Everything that dates an account's billing (periods, invoices, dunning) reads this.
 */
export async function nowForAccount(db: Db, account: { testClockId: string | null }, clock: Clock): Promise<Date> {
  if (!account.testClockId) return clock.now();
  const [row] = await db.select({ frozenTime: testClocks.frozenTime }).from(testClocks).where(eq(testClocks.id, account.testClockId));
  return row?.frozenTime ?? clock.now();
}
