import type { Db } from '../../db/client.js';
import type { ChangeFeed } from '../../db/change-feed.js';
import { InvalidatedCache } from '../../lib/cache.js';
import type { Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import { generateApiKey, legacyKeyHash, validateKeyScopes, type KeyHasher, type Scope } from './domain.js';
import { AppError } from '../../lib/errors.js';
import { page } from '../../lib/pagination.js';
import { recordAudit } from '../audit/repo.js';
import { complete as completeIdempotency, type IdempotencyHandle } from '../idempotency/repo.js';
import * as repo from './repo.js';

export interface Principal {
  keyId: string;
  scopes: Scope[];
  /** Set when the key may act for this one account only. */
  accountId: string | null;
}

export class InvalidKeyRequest extends Error {}

const BOOTSTRAP_NAME = 'bootstrap';

/**
 * API keys. With a change feed (the api), known keys are cached by their plain SHA-256 (one
 * hash a request; the peppered HMAC is computed on a miss only): a revocation
 * notifies the feed in its own transaction, which drops the cache before the next request
 * is authenticated. Unknown keys are never cached, so guessing fills nothing.
 * Keys are stored in the hasher's current form; a row in an older form (legacy SHA-256, or a
 * pepper of a key rotated out of first place) is found by the same lookup and rewritten in the
 * current form on its first use.
 */
export function createAuthService(deps: { db: Db; clock: Clock; hasher: KeyHasher; changes?: ChangeFeed }) {
  const { db, clock, changes, hasher } = deps;
  const keys = new InvalidatedCache<Principal>({ max: 10_000, ttlMs: 60_000, trusted: () => changes?.live ?? false });
  changes?.subscribe((change) => {
    // Keys are few and change rarely: any key change (or a reset) drops them all.
    if (change.kind === 'key' || change.kind === 'reset') keys.clear();
  });

  async function authenticate(key: string): Promise<Principal | null> {
    return keys.get(legacyKeyHash(key), async () => {
      const forms = hasher.candidates(key);
      const row = await repo.findActiveKeyByHash(db, forms.map((f) => f.hash));
      if (!row) return null;
      const current = hasher.hash(key);
      if (row.hash !== current.hash) await repo.rehashKey(db, row.id, row.hash, current);
      return { keyId: row.id, scopes: row.scopes as Scope[], accountId: row.accountId };
    });
  }

  /**
   * Rewrites every legacy SHA-256 row in the current form, which needs no key (the form hashes
   * the SHA-256). Rows under an older pepper cannot be converted without their key: they are
   * rewritten on first use, and counted here so an operator knows when an old key may go.
   */
  async function rehashLegacyKeys(batch = 500): Promise<{ rehashed: number; byHashKid: Record<string, number> }> {
    let rehashed = 0;
    for (let after = ''; ; ) {
      const rows = await repo.listLegacyHashes(db, after, batch);
      if (rows.length === 0) break;
      for (const row of rows) if (await repo.rehashKey(db, row.id, row.hash, hasher.fromLegacy(row.hash))) rehashed++;
      after = rows.at(-1)!.id;
    }
    const counts = await repo.countByHashKid(db);
    return { rehashed, byHashKid: Object.fromEntries(counts.map((c) => [c.hashKid ?? 'legacy-sha256', c.keys])) };
  }

  /** Whether this process has the key cached as valid: answered without a lookup. */
  function isKnown(key: string): boolean {
    return keys.peek(legacyKeyHash(key)) !== undefined;
  }

  /**
   * Makes a key and returns it once; only its hash is kept. The creation is audited, in the
   * same transaction. Over HTTP with an Idempotency-Key, the response is recorded in that
   * transaction too, without the secret: a replay answers the same key, never its secret.
   */
  async function createApiKey(input: {
    name: string;
    scopes: Scope[];
    accountId?: string | null;
    actor?: string;
    requestId?: string;
    idempotency?: IdempotencyHandle | null;
  }) {
    const accountId = input.accountId ?? null;
    const problem = validateKeyScopes(input.scopes, accountId);
    if (problem) throw new InvalidKeyRequest(problem);
    const { key, prefix } = generateApiKey();
    const createdAt = clock.now();
    const id = newId('key', createdAt);
    const shown = { id, name: input.name, prefix, scopes: input.scopes, accountId, createdAt, revokedAt: null };
    await db.transaction(async (tx) => {
      await repo.insertKey(tx, { id, name: input.name, prefix, ...hasher.hash(key), scopes: input.scopes, accountId, createdAt });
      await recordAudit(tx, {
        at: clock.now(),
        actorKeyId: input.actor ?? 'system',
        action: 'api_key.create',
        accountId,
        target: id,
        requestId: input.requestId ?? null,
        status: input.requestId ? 201 : null,
        details: { name: input.name, scopes: input.scopes, prefix },
      });
      if (input.idempotency) {
        await completeIdempotency(tx, input.idempotency, 201, JSON.parse(JSON.stringify(shown)));
        input.idempotency.completed = true;
      }
    });
    return { ...shown, key };
  }

  /** Keys newest first (revoked ones too), as they may be shown: no secret, no hash. */
  async function listApiKeys(opts: { accountId?: string; before?: string; limit: number }) {
    return page(await repo.listKeys(db, { ...opts, limit: opts.limit + 1 }), opts.limit, (k) => k.id);
  }

  /**
   * Revokes a key; revoking a revoked key answers it as it is. The last active operator key is
   * not revoked (409 last_ops_key): without it nobody could make keys while the service runs.
   * This process forgets its cached keys at once; the others hear of it on the change feed.
   */
  async function revokeApiKey(id: string) {
    const revoked = await db.transaction(async (tx) => {
      const ops = await repo.lockActiveOpsKeys(tx);
      if (ops.length === 1 && ops[0] === id) {
        throw new AppError('last_ops_key', `${id} is the last active ops key: make another ops key before revoking it`);
      }
      return (await repo.revokeKey(tx, id, clock.now())) ?? (await repo.findKey(tx, id));
    });
    if (!revoked) throw new AppError('api_key_not_found', `No API key ${id}`);
    keys.clear();
    return revoked;
  }

  /**
   * Registers an operator-chosen key (BOOTSTRAP_API_KEY) as an ops key; a no-op when it is
   * already registered, so every start may call it. Changing the variable rotates the key:
   * the previous bootstrap key stops working. Hashed like every other key: a row of it in an
   * older form is replaced by one in the current form.
   */
  async function registerBootstrapKey(key: string): Promise<boolean> {
    const { hash, hashKid } = hasher.hash(key);
    const registered = await db.transaction(async (tx) => {
      await repo.revokeOthersNamed(tx, BOOTSTRAP_NAME, hash, clock.now());
      return repo.insertKey(tx, {
        id: newId('key', clock.now()),
        name: BOOTSTRAP_NAME,
        // An operator-chosen key may be short: keep only its first characters.
        prefix: `${key.slice(0, 4)}...`,
        hash,
        hashKid,
        scopes: ['ops'],
        accountId: null,
        createdAt: clock.now(),
      });
    });
    keys.clear(); // this process revoked: do not wait for the notification
    return registered;
  }

  /** On an empty key table, makes the first ops key so a newcomer can call the API. */
  async function createFirstOpsKeyIfNone() {
    if ((await repo.countKeys(db)) > 0) return null;
    return createApiKey({ name: 'first ops key', scopes: ['ops'], actor: 'bootstrap' });
  }

  return { authenticate, isKnown, createApiKey, listApiKeys, revokeApiKey, registerBootstrapKey, createFirstOpsKeyIfNone, rehashLegacyKeys };
}

export type AuthService = ReturnType<typeof createAuthService>;
