import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** One key of the SECRETS_KEYS ring: an id stored beside what it encrypted, and 32 bytes. */
export interface SecretKey {
  id: string;
  key: Buffer;
}

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

const PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * The development and test key ring when SECRETS_KEYS is unset. Its key is derived from a
 * public sentence: anything sealed with it is as good as plain text. Never in production.
 */
export const developmentKeyRing: readonly SecretKey[] = Object.freeze([
  { id: 'dev-insecure', key: createHash('sha256').update('billing-service development secrets key; public, never for production').digest() },
]);

/** Parses `kid:base64key,...` (32-byte keys); a string says what is wrong. */
export function parseKeyRing(text: string): SecretKey[] | string {
  const ring: SecretKey[] = [];
  for (const entry of text.split(',').map((e) => e.trim())) {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon);
    if (colon < 0 || !KEY_ID.test(id)) return 'must be kid:base64key pairs, comma-separated, such as k2026a:<openssl rand -base64 32>';
    const encoded = entry.slice(colon + 1);
    const key = Buffer.from(encoded, 'base64');
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded) || key.length !== 32) return `key ${id} must be 32 bytes in base64 (openssl rand -base64 32)`;
    if (ring.some((k) => k.id === id)) return `key id ${id} appears twice`;
    ring.push({ id, key });
  }
  return ring;
}

export const isSealed = (stored: string): boolean => stored.startsWith(PREFIX);

/** The id of the key a sealed value was made with, or null for a plain (legacy) value. */
export const keyIdOf = (stored: string): string | null => (isSealed(stored) ? stored.slice(PREFIX.length).split(':', 1)[0]! : null);

/**
 * AES-256-GCM under a key ring: the first key seals, every key opens. A sealed value names its
 * key and is bound to its context (`aad`, such as the row's id), so it cannot be moved to
 * another row: `enc:v1:<kid>:<iv b64url>:<ciphertext+tag b64url>`.
 */
export function createSecretBox(ring: readonly SecretKey[]) {
  if (ring.length === 0) throw new SecretBoxError('the key ring is empty');
  const current = ring[0]!;
  const byId = new Map(ring.map((k) => [k.id, k.key]));

  function seal(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', current.key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${current.id}:${iv.toString('base64url')}:${body.toString('base64url')}`;
  }

  function open(stored: string, aad: string): string {
    const parts = isSealed(stored) ? stored.slice(PREFIX.length).split(':') : [];
    if (parts.length !== 3) throw new SecretBoxError('not a sealed value');
    const [kid, ivText, bodyText] = parts as [string, string, string];
    const key = byId.get(kid);
    if (!key) throw new SecretBoxError(`sealed with key ${kid}, which SECRETS_KEYS no longer holds`);
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new SecretBoxError('a malformed sealed value');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError(`a sealed value under key ${kid} failed authentication (tampered, or moved from another row)`);
    }
  }

  /** A legacy plain value passes through: it keeps working until it is sealed. */
  const reveal = (stored: string, aad: string): string => (isSealed(stored) ? open(stored, aad) : stored);

  /** Plain or under an older key: sealed again with the current key; otherwise unchanged. */
  const reseal = (stored: string, aad: string): string => (keyIdOf(stored) === current.id ? stored : seal(reveal(stored, aad), aad));

  return { currentKeyId: current.id, seal, open, reveal, reseal };
}

export type SecretBox = ReturnType<typeof createSecretBox>;

/** A 32-byte key for one purpose (HKDF-SHA256 info), so no key of the ring is used twice. */
export const deriveKey = (key: SecretKey, purpose: string): Buffer => Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), purpose, 32));
