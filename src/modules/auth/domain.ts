import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Scopes: `read` sees, `write` changes an account's own billing, `kyc` is the KYC service's
 * right to set KYC status, `ops` is everything an operator may do.
 */
export const scopeSchema = z.enum(['read', 'write', 'kyc', 'ops']);
export type Scope = z.infer<typeof scopeSchema>;

const implied: Record<Scope, readonly Scope[]> = {
  read: ['read'],
  write: ['write', 'read'],
  kyc: ['kyc'],
  ops: ['ops', 'write', 'read', 'kyc'],
};

export const grants = (held: readonly Scope[], needed: Scope): boolean => held.some((s) => implied[s].includes(needed));

/** Keys bound to one account may only act for it, never as an operator. */
export function validateKeyScopes(scopes: readonly Scope[], accountId: string | null): string | null {
  if (scopes.length === 0) return 'a key needs at least one scope';
  if (accountId && (scopes.includes('ops') || scopes.includes('kyc'))) {
    return 'a key bound to an account may only have the read and write scopes';
  }
  return null;
}

const KEY_PREFIX = 'bsk_';

/** 256 random bits, base64url, behind a readable prefix: `bsk_` + 43 characters. */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: displayPrefix(key), hash: hashApiKey(key) };
}

/** Enough of a key to recognise it in a list, too little to matter: 6 of its random characters. */
export const displayPrefix = (key: string): string => key.slice(0, KEY_PREFIX.length + 6);

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export function parseBearer(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}
