import { and, desc, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { subscriptions } from '../../db/schema/index.js';

export type SubscriptionRow = typeof subscriptions.$inferSelect;

export async function insertSubscription(db: Db, row: typeof subscriptions.$inferInsert): Promise<SubscriptionRow> {
  const [inserted] = await db.insert(subscriptions).values(row).returning();
  return inserted!;
}

export async function findSubscription(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<SubscriptionRow | undefined> {
  const query = db.select().from(subscriptions).where(eq(subscriptions.id, id));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

/** The subscription that is not cancelled, if any. */
export async function findLiveSubscription(db: Db, accountId: string): Promise<SubscriptionRow | undefined> {
  const [row] = await db
    .select()
    .from(subscriptions)
    .where(and(eq(subscriptions.accountId, accountId), ne(subscriptions.status, 'cancelled')));
  return row;
}

/** The live subscription, or else the one that ended last: what the account's subscription is now. */
export async function findLatestSubscription(db: Db, accountId: string): Promise<SubscriptionRow | undefined> {
  const [row] = await db
    .select()
    .from(subscriptions)
    .where(eq(subscriptions.accountId, accountId))
    .orderBy(sql`${subscriptions.status} = 'cancelled'`, desc(subscriptions.createdAt))
    .limit(1);
  return row;
}

/** The active subscription (not past due, not cancelled), if any. */
export async function findActiveSubscription(db: Db, accountId: string): Promise<SubscriptionRow | undefined> {
  const [row] = await db.select().from(subscriptions).where(and(eq(subscriptions.accountId, accountId), eq(subscriptions.status, 'active')));
  return row;
}

/**
 * The live subscription charges this method from its next charge on. A pre-debit notice sent
 * for another method does not cover this one: it is forgotten, so the charge waits for its own.
 */
export async function setPaymentMethodOfLive(db: Db, accountId: string, paymentMethodId: string, at: Date): Promise<void> {
  const same = sql`${subscriptions.paymentMethodId} = ${paymentMethodId}`;
  await db
    .update(subscriptions)
    .set({
      paymentMethodId,
      renewalNoticeFor: sql`case when ${same} then ${subscriptions.renewalNoticeFor} end`,
      renewalNoticeAt: sql`case when ${same} then ${subscriptions.renewalNoticeAt} end`,
      updatedAt: at,
    })
    .where(and(eq(subscriptions.accountId, accountId), ne(subscriptions.status, 'cancelled')));
}
