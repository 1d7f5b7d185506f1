import { createHash, randomBytes } from 'node:crypto';

// Crockford base32, lower-cased: no i, l, o, u; sorts like the number it encodes.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A ULID-shaped id: 10 characters of millisecond time then 16 of randomness, so ids sort
 * by creation time and cursor pagination can page on them.
 */
export function newId(prefix: string, now: Date = new Date()): string {
  let time = now.getTime();
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = ALPHABET[time % 32] + head;
    time = Math.floor(time / 32);
  }
  const bytes = randomBytes(10);
  let tail = '';
  // 80 random bits -> 16 characters of 5 bits.
  let bits = 0;
  let acc = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      tail += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return `${prefix}_${head}${tail}`;
}

/**
 * An id of the same shape derived from a key: the same key gives the same id. For what a
 * retried request creates (a method saved while paying), so the retry finds it again.
 */
export function idFromKey(prefix: string, key: string): string {
  const digest = createHash('sha256').update(key).digest();
  let id = '';
  for (let i = 0; i < 26; i++) id += ALPHABET[digest[i]! & 31];
  return `${prefix}_${id}`;
}
