import { and, asc, count, eq, gt } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, whitelistedNumbers } from '../../db/schema/index.js';

export type AccountRow = typeof accounts.$inferSelect;

export async function insertAccount(db: Db, row: typeof accounts.$inferInsert): Promise<AccountRow> {
  const [inserted] = await db.insert(accounts).values(row).returning();
  return inserted!;
}

export async function findAccount(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<AccountRow | undefined> {
  const query = db.select().from(accounts).where(eq(accounts.id, id)).limit(1);
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function listAccounts(db: Db, opts: { after?: string; limit: number; only?: string | null }): Promise<AccountRow[]> {
  const conditions = [opts.after ? gt(accounts.id, opts.after) : undefined, opts.only ? eq(accounts.id, opts.only) : undefined];
  return db
    .select()
    .from(accounts)
    .where(and(...conditions))
    .orderBy(asc(accounts.id))
    .limit(opts.limit);
}

export async function updateKyc(db: Db, id: string, kyc: Pick<AccountRow, 'kycStatus' | 'kycReason' | 'kycUpdatedAt'>): Promise<AccountRow> {
  const [row] = await db
    .update(accounts)
    .set({ ...kyc, updatedAt: kyc.kycUpdatedAt! })
    .where(eq(accounts.id, id))
    .returning();
  return row!;
}

export async function countWhitelisted(db: Db, accountId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(whitelistedNumbers).where(eq(whitelistedNumbers.accountId, accountId));
  return row?.n ?? 0;
}

export async function findWhitelisted(db: Db, accountId: string, number: string) {
  const [row] = await db
    .select()
    .from(whitelistedNumbers)
    .where(and(eq(whitelistedNumbers.accountId, accountId), eq(whitelistedNumbers.number, number)))
    .limit(1);
  return row;
}

export async function insertWhitelisted(db: Db, row: typeof whitelistedNumbers.$inferInsert) {
  const [inserted] = await db.insert(whitelistedNumbers).values(row).returning();
  return inserted!;
}

export async function deleteWhitelisted(db: Db, accountId: string, number: string): Promise<boolean> {
  const deleted = await db
    .delete(whitelistedNumbers)
    .where(and(eq(whitelistedNumbers.accountId, accountId), eq(whitelistedNumbers.number, number)))
    .returning({ number: whitelistedNumbers.number });
  return deleted.length > 0;
}

export async function listWhitelisted(db: Db, accountId: string, opts: { after?: string; limit: number }) {
  return db
    .select({ number: whitelistedNumbers.number, createdAt: whitelistedNumbers.createdAt })
    .from(whitelistedNumbers)
    .where(and(eq(whitelistedNumbers.accountId, accountId), opts.after ? gt(whitelistedNumbers.number, opts.after) : undefined))
    .orderBy(asc(whitelistedNumbers.number))
    .limit(opts.limit);
}

/** The customer's details for their tax invoices, replaced whole. */
export async function setBillingProfile(db: Db, id: string, billingProfile: NonNullable<AccountRow['billingProfile']>, at: Date): Promise<AccountRow> {
  const [row] = await db.update(accounts).set({ billingProfile, updatedAt: at }).where(eq(accounts.id, id)).returning();
  return row!;
}
