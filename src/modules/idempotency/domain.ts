import { createHash, createHmac } from 'node:crypto';
import { deriveKey, type SecretKey } from '../../lib/secret-box.js';

export const RETENTION_MS = 24 * 3600 * 1000;
/**
 * A running request renews its record every HEARTBEAT_MS; an in-progress record not renewed
 * for LOCK_TIMEOUT_MS belongs to a request that died (a killed process, a connection lost
 * before the record could be released) and a retry may take it over.
 */
export const HEARTBEAT_MS = 3 * 1000;
export const LOCK_TIMEOUT_MS = 10 * 1000;

/** JSON with sorted keys, so a retry that orders fields differently is the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The first form (kept until the records of the day before this one expired): a plain SHA-256. */
export const requestFingerprint = (method: string, path: string, body: unknown): string =>
  createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex');

/**
 * Fingerprints of a request: the body may carry a card token or a VPA, so what is stored is
 * an HMAC under a key derived from SECRETS_KEYS (a guessable VPA cannot be tested offline
 * against a stolen record). `stored` is the current form; `accepted` every form a record of
 * the last 24 h may hold (under each key of the ring, and the plain SHA-256 of before).
 */
export function createFingerprinter(ring: readonly SecretKey[]) {
  const keys = ring.map((k) => deriveKey(k, 'idempotency-fingerprint'));
  return (method: string, path: string, body: unknown): { stored: string; accepted: string[] } => {
    const text = `${method} ${path}\n${canonicalJson(body)}`;
    const forms = keys.map((key) => createHmac('sha256', key).update(text).digest('hex'));
    return { stored: forms[0]!, accepted: [...forms, createHash('sha256').update(text).digest('hex')] };
  };
}

export type Verdict = 'proceed' | 'replay' | 'mismatch' | 'in_progress' | 'take_over';

export interface StoredRecord {
  requestHash: string;
  state: 'in_progress' | 'completed';
  createdAt: Date;
  lockedAt: Date;
  heartbeatAt?: Date | null;
}

/** When the holder of an in-progress record last showed it was alive. */
const lastSignOf = (record: StoredRecord): number => Math.max(record.lockedAt.getTime(), record.heartbeatAt?.getTime() ?? 0);

/** Whole seconds (at least 1) until an in-progress record may be taken over, for a 409's Retry-After. */
export const secondsUntilTakeOver = (record: StoredRecord, now: Date): number =>
  Math.max(1, Math.ceil((lastSignOf(record) + LOCK_TIMEOUT_MS - now.getTime()) / 1000));

/** What to do with a request whose key already has a record. */
export function judge(record: StoredRecord, requestHash: string | readonly string[], now: Date): Verdict {
  if (now.getTime() - record.createdAt.getTime() > RETENTION_MS) return 'take_over';
  if (!(typeof requestHash === 'string' ? [requestHash] : requestHash).includes(record.requestHash)) return 'mismatch';
  if (record.state === 'completed') return 'replay';
  return now.getTime() - lastSignOf(record) >= LOCK_TIMEOUT_MS ? 'take_over' : 'in_progress';
}
