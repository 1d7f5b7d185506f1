import { createHmac, hash, randomBytes } from 'node:crypto';
import { deriveKey, type SecretKey } from '../../lib/secret-box.js';
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
export function generateApiKey(): { key: string; prefix: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: displayPrefix(key) };
}

/** Enough of a key to recognise it in a list, too little to matter: 6 of its random characters. */
export const displayPrefix = (key: string): string => key.slice(0, KEY_PREFIX.length + 6);

/** The legacy stored form (`hash_kid` null): plain SHA-256, which lets a stolen table test guesses. */
export const legacyKeyHash = (key: string): string => hash('sha256', key, 'hex');

/**
 * Stored form of a key: HMAC-SHA256, under a pepper derived (HKDF) from a SECRETS_KEYS key,
 * of the key's SHA-256, with that key's id beside it (`hash_kid`). Without the pepper a stolen
 * table tests no guess, an operator-chosen key included; one HMAC per request stays cheap.
 * Hashing the SHA-256 rather than the key lets a legacy row be converted without its key.
 */
export function createKeyHasher(ring: readonly SecretKey[]) {
  const peppers = ring.map((k) => ({ kid: k.id, pepper: deriveKey(k, 'api-key-hash') }));
  const current = peppers[0]!;
  const hmac = (pepper: Buffer, legacy: string) => createHmac('sha256', pepper).update(legacy).digest('hex');
  return {
    currentKid: current.kid,
    /** What a new key is stored as. */
    hash: (key: string) => ({ hash: hmac(current.pepper, legacyKeyHash(key)), hashKid: current.kid }),
    /** Every form this key may be stored in, current first: one indexed lookup finds any. */
    candidates(key: string): Array<{ hash: string; hashKid: string | null }> {
      const legacy = legacyKeyHash(key);
      return [...peppers.map((p) => ({ hash: hmac(p.pepper, legacy), hashKid: p.kid })), { hash: legacy, hashKid: null }];
    },
    /** A legacy row's hash in the current form, without the key. */
    fromLegacy: (legacy: string) => ({ hash: hmac(current.pepper, legacy), hashKid: current.kid }),
  };
}

export type KeyHasher = ReturnType<typeof createKeyHasher>;

export function parseBearer(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}
