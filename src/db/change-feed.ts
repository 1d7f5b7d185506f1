import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Logger } from '../lib/logger.js';
import type { Database } from './client.js';

/** What the database announced (migrations 0014, 0015), or `reset`: forget everything cached. */
export type Change =
  | { kind: 'account'; accountId: string }
  | { kind: 'balance'; accountId: string }
  | { kind: 'key'; keyId: string }
  | { kind: 'catalog' }
  | { kind: 'sync'; token: string }
  | { kind: 'reset' };

export const CHANGES_CHANNEL = 'billing_changes';

export function parseChange(payload: string): Change | null {
  if (payload === 'catalog') return { kind: 'catalog' };
  if (payload === 'reset') return { kind: 'reset' };
  const colon = payload.indexOf(':');
  const kind = payload.slice(0, colon);
  const id = payload.slice(colon + 1);
  if (!id) return null;
  if (kind === 'account' || kind === 'balance') return { kind, accountId: id };
  if (kind === 'key') return { kind, keyId: id };
  if (kind === 'sync') return { kind, token: id };
  return null;
}

/**
 * The database's change notifications, for the api's caches. A cache may only trust
 * itself while `live`: notifications could be missed otherwise, so a cache bypasses
 * itself then, and every (re)start of the feed says `reset`.
 */
export interface ChangeFeed {
  readonly live: boolean;
  subscribe(handler: (change: Change) => void): void;
  /**
   * Resolves once every change committed before the call has been heard: it sends a
   * notification of its own and waits for it, and Postgres delivers in commit order.
   * While the feed is down it resolves at once: nothing is cached then.
   */
  sync(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function openChangeFeed(database: Database, logger: Logger): Promise<ChangeFeed> {
  const handlers: Array<(change: Change) => void> = [];
  const waiting = new Map<string, () => void>();
  let live = false;
  const emit = (change: Change) => {
    if (change.kind === 'sync') waiting.get(change.token)?.();
    for (const handler of handlers) handler(change);
  };
  const stop = await database.listen(
    CHANGES_CHANNEL,
    {
      onPayload(payload) {
        const change = parseChange(payload);
        if (change) emit(change);
        else logger.warn({ payload }, 'unknown change notification; dropping all caches');
        if (!change) emit({ kind: 'reset' });
      },
      onLive(now) {
        live = now;
        emit({ kind: 'reset' });
      },
    },
    logger,
  );
  return {
    get live() {
      return live;
    },
    subscribe: (handler) => void handlers.push(handler),
    async sync(timeoutMs = 5000) {
      if (!live) return; // nothing is cached while the feed is down
      const token = randomUUID();
      const heard = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(token);
          reject(new Error(`change feed did not hear its own notification within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(token, () => {
          clearTimeout(timer);
          waiting.delete(token);
          resolve();
        });
      });
      await database.db.execute(sql`select pg_notify(${CHANGES_CHANNEL}, ${`sync:${token}`})`);
      await heard;
    },
    close: stop,
  };
}
