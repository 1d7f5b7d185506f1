import { and, desc, eq, lt } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { auditEvents } from '../../db/schema/index.js';

export type AuditEntry = Omit<typeof auditEvents.$inferInsert, 'id'>;

const SECRET_FIELDS = /token|vpa|secret|password|^key$|authorization/i;

/** Payment instruments and secrets never reach the audit log. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_FIELDS.test(k) ? '[redacted]' : redact(v)]));
  }
  return value;
}

export async function recordAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db.insert(auditEvents).values({ ...entry, details: redact(entry.details) as Record<string, unknown> });
}

export async function listAudit(db: Db, opts: { accountId?: string; before?: number; limit: number }) {
  return db
    .select()
    .from(auditEvents)
    .where(and(opts.accountId ? eq(auditEvents.accountId, opts.accountId) : undefined, opts.before ? lt(auditEvents.id, opts.before) : undefined))
    .orderBy(desc(auditEvents.id))
    .limit(opts.limit);
}
