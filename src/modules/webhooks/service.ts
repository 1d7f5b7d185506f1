import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Db } from '../../db/client.js';
import { retryOnConnectionError } from '../../db/errors.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import { page } from '../../lib/pagination.js';
import { SecretBoxError, type SecretBox } from '../../lib/secret-box.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents, type OutboxRow } from '../events/repo.js';
import { nextDelayMs, retryWindowMs, type DeliveryClass } from './domain.js';
import * as repo from './repo.js';
import type { DeliveryRow, EndpointRow } from './repo.js';
import { assertDeliverable, guardedAgent } from './ssrf.js';
import { fetch as undiciFetch } from 'undici';

export interface WebhookDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  production: boolean;
  allowedHosts: string[];
  retryScale: number;
  secretGraceHours: number;
  /** Seals signing secrets at rest (SECRETS_KEYS); each bound to its endpoint's id. */
  secrets: SecretBox;
}

type Viewer = { accountId: string | null };

const TIMEOUT_MS = 15_000;
/** A delivery in flight holds this lease; a worker that died leaves it due again afterwards. */
const LEASE_MS = 2 * 60_000;
/** A delivery handed to the queue is skipped by the sweep this long (scaled like the retry pauses). */
const QUEUED_LEASE_MS = 60_000;
/** Pauses between tries of recording an attempt whose connection was lost (7.6 s in all). */
const RECORD_RETRY_PAUSES_MS = [100, 500, 1000, 2000, 4000];

const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

/**
 * Outbound webhooks on the Standard Webhooks spec. Every delivery is kept in Postgres with
 * its attempts; the scheduler hands due ones to a queue per class (priority and guaranteed
 * on their own queue, so a standard backlog never delays them).
 */
export function createWebhookService(deps: WebhookDeps) {
  const { db, clock } = deps;
  const agent = guardedAgent(deps.allowedHosts);
  // A job lost with Redis comes back when its lease runs out: a minute in production.
  const queuedLeaseMs = Math.max(100, QUEUED_LEASE_MS * deps.retryScale);

  const toDto = (row: EndpointRow) => ({
    id: row.id,
    accountId: row.accountId,
    url: row.url,
    description: row.description,
    eventTypes: row.eventTypes,
    status: row.status as 'enabled' | 'disabled',
    disabledReason: row.disabledReason,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  });

  async function mustFindEndpoint(tx: Db, id: string, viewer: Viewer): Promise<EndpointRow> {
    const row = await repo.findEndpoint(tx, id);
    if (!row || (viewer.accountId && viewer.accountId !== row.accountId)) throw new AppError('webhook_endpoint_not_found', `No webhook endpoint ${id}`);
    return row;
  }

  async function create(accountId: string, input: { url: string; eventTypes: string[]; description: string }) {
    if (!(await accountsRepo.findAccount(db, accountId))) throw new AppError('account_not_found', `No account ${accountId}`);
    await assertDeliverable(input.url, deps);
    const now = clock.now();
    const secret = newSecret();
    const id = newId('we', now);
    const row = await repo.insertEndpoint(db, { id, accountId, url: input.url, description: input.description, eventTypes: input.eventTypes, status: 'enabled', secret: deps.secrets.seal(secret, id), createdAt: now, updatedAt: now });
    // The secret is shown this once.
    return { ...toDto(row), secret };
  }

  async function list(accountId: string) {
    const rows = await repo.listEndpoints(db, accountId);
    return { data: rows.map(toDto), nextCursor: null };
  }

  async function update(id: string, viewer: Viewer, input: { url?: string; eventTypes?: string[]; description?: string; enabled?: boolean }) {
    const current = await mustFindEndpoint(db, id, viewer);
    if (input.url) await assertDeliverable(input.url, deps);
    const row = await repo.updateEndpoint(db, id, {
      url: input.url ?? current.url,
      eventTypes: input.eventTypes ?? current.eventTypes,
      description: input.description ?? current.description,
      ...(input.enabled === undefined ? {} : { status: input.enabled ? 'enabled' : 'disabled', disabledReason: input.enabled ? null : 'disabled by the account' }),
      updatedAt: clock.now(),
    });
    return toDto(row!);
  }

  async function remove(id: string, viewer: Viewer) {
    await mustFindEndpoint(db, id, viewer);
    await db.transaction(async (tx) => {
      await repo.markEndpointDeleted(tx, id, clock.now());
      await repo.failPendingDeliveries(tx, id, 'endpoint deleted');
    });
  }

  /** A new secret, shown once; the old one keeps signing beside it for the grace period. */
  async function rotateSecret(id: string, viewer: Viewer) {
    const current = await mustFindEndpoint(db, id, viewer);
    const now = clock.now();
    const secret = newSecret();
    await repo.setSecrets(db, id, {
      secret: deps.secrets.seal(secret, id),
      // A legacy plain secret is sealed on its way out too.
      previousSecret: deps.secrets.reseal(current.secret, id),
      previousSecretExpiresAt: new Date(now.getTime() + deps.secretGraceHours * 3_600_000),
      updatedAt: now,
    });
    return { ...toDto({ ...current, updatedAt: now }), secret };
  }

  /**
   * One delivery per subscribed, enabled endpoint, once per event. The relay calls it in the
   * transaction that marks the event relayed, so a Redis that loses its jobs loses no delivery.
   */
  async function fanOut(event: OutboxRow, tx: Db = db): Promise<number> {
    if (!event.accountId) return 0;
    const account = await accountsRepo.findAccount(tx, event.accountId);
    if (!account) return 0;
    const endpoints = (await repo.listEnabledEndpoints(tx, account.id)).filter((e) => e.eventTypes.length === 0 || e.eventTypes.includes(event.type));
    if (endpoints.length === 0) return 0;
    const plan = await catalogRepo.findPlan(tx, account.planId);
    const deliveryClass: DeliveryClass = plan?.entitlements.webhooks ?? 'standard';
    const now = clock.now();
    return repo.insertDeliveries(
      tx,
      endpoints.map((e) => ({
        id: newId('whd', now),
        endpointId: e.id,
        accountId: account.id,
        eventId: event.eventId,
        eventCreatedAt: event.createdAt,
        eventType: event.type,
        deliveryClass,
        status: 'pending' as const,
        nextAttemptAt: now,
        giveUpAt: new Date(now.getTime() + retryWindowMs[deliveryClass] * deps.retryScale),
        createdAt: now,
      })),
    );
  }

  /**
   * Deliveries due now, for the scheduler, each leased for a minute so the next sweeps skip
   * it while its job waits (a job lost with Redis is re-queued when the lease runs out).
   * Priority and guaranteed ones are read on their own: a standard backlog cannot crowd them out.
   */
  async function findDue(limit = 500): Promise<Array<{ id: string; attempt: number; deliveryClass: DeliveryClass }>> {
    const now = clock.now();
    const take = (classes: DeliveryClass[]) => repo.leaseDueDeliveries(db, classes, now, new Date(now.getTime() + queuedLeaseMs), limit);
    const rows = [...(await take(['priority', 'guaranteed'])), ...(await take(['standard']))];
    return rows.map((r) => ({ id: r.id, attempt: r.attempts + 1, deliveryClass: r.deliveryClass }));
  }

  /** One attempt: sign, POST with a 15 s timeout, record it, and schedule the next or finish. */
  async function deliver(deliveryId: string, attempt: number): Promise<'succeeded' | 'retrying' | 'failed' | 'skipped'> {
    const claimed = await db.transaction(async (tx) => {
      const d = await repo.lockDelivery(tx, deliveryId);
      if (!d || d.status !== 'pending' || d.attempts + 1 !== attempt || !d.nextAttemptAt || d.nextAttemptAt > clock.now()) return null;
      const now = clock.now();
      await repo.startAttempt(tx, deliveryId, attempt, new Date(now.getTime() + LEASE_MS));
      const endpoint = await repo.findEndpointIncludingDeleted(tx, d.endpointId);
      const event = await repo.findEvent(tx, d.eventId, d.eventCreatedAt);
      return { delivery: d, endpoint: endpoint!, event };
    });
    if (!claimed) return 'skipped';
    const { delivery, endpoint, event } = claimed;
    if (endpoint.status !== 'enabled') return finish(delivery, attempt, { statusCode: null, latencyMs: 0, error: `endpoint ${endpoint.status}` }, 'failed');
    if (!event) {
      // Its outbox month was dropped by retention (history maintenance holds a month while a
      // delivery of it is pending, so this is a redelivery of an old one): nothing to send.
      deps.logger.warn({ deliveryId: delivery.id, eventId: delivery.eventId }, 'webhook delivery failed: its event is past the outbox retention and no longer kept');
      return finish(delivery, attempt, { statusCode: null, latencyMs: 0, error: 'the event is no longer kept (past the outbox retention)' }, 'failed');
    }

    const body = JSON.stringify({ type: event.type, timestamp: event.createdAt.toISOString(), data: { eventId: event.eventId, ...event.payload } });
    const timestamp = clock.now();
    const started = Date.now();
    let outcome: { statusCode: number | null; latencyMs: number; error: string | null };
    try {
      await assertDeliverable(endpoint.url, deps);
      const response = await undiciFetch(endpoint.url, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'billing-service-webhooks/1', ...signatureHeaders(endpoint, delivery.eventId, timestamp, body) },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      await response.body?.cancel().catch(() => {});
      outcome = { statusCode: response.status, latencyMs: Date.now() - started, error: response.ok ? null : `HTTP ${response.status}` };
    } catch (err) {
      outcome = { statusCode: null, latencyMs: Date.now() - started, error: (err as Error).message.slice(0, 300) };
    }
    if (outcome.statusCode !== null && outcome.statusCode >= 200 && outcome.statusCode < 300) return finish(delivery, attempt, outcome, 'succeeded');
    if (outcome.statusCode === 410) {
      await repo.disableEnabledEndpoint(db, endpoint.id, 'the receiver answered 410 Gone', clock.now());
      return finish(delivery, attempt, outcome, 'failed');
    }
    return finish(delivery, attempt, outcome, 'retry');
  }

  /** The endpoint's signing secrets in clear, for this one signature. */
  function readSecrets(endpoint: EndpointRow, at: Date): string[] {
    try {
      const secrets = [deps.secrets.reveal(endpoint.secret, endpoint.id)];
      if (endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > at) {
        secrets.push(deps.secrets.reveal(endpoint.previousSecret, endpoint.id));
      }
      return secrets;
    } catch (err) {
      if (!(err instanceof SecretBoxError)) throw err;
      // The receiver sees a failed attempt; which key is missing is for the operator's eyes.
      deps.logger.error({ err, endpointId: endpoint.id }, 'cannot read a webhook signing secret: is its key still in SECRETS_KEYS?');
      throw new Error('the signing secret could not be read');
    }
  }

  function signatureHeaders(endpoint: EndpointRow, msgId: string, timestamp: Date, body: string) {
    const secrets = readSecrets(endpoint, timestamp);
    return {
      'webhook-id': msgId,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': secrets.map((s) => new Webhook(s).sign(msgId, timestamp, body)).join(' '),
    };
  }

  async function finish(
    delivery: DeliveryRow,
    attempt: number,
    outcome: { statusCode: number | null; latencyMs: number; error: string | null },
    result: 'succeeded' | 'failed' | 'retry',
  ): Promise<'succeeded' | 'retrying' | 'failed'> {
    const now = clock.now();
    // Retry until the class's window ends: the last pause is cut short to land on its end.
    const pause = result === 'retry' && now < delivery.giveUpAt ? new Date(now.getTime() + nextDelayMs(attempt, deps.retryScale)) : null;
    const next = pause && pause > delivery.giveUpAt ? delivery.giveUpAt : pause;
    const status = result === 'succeeded' ? 'succeeded' : result === 'failed' || !next ? 'failed' : 'pending';
    // The receiver has it: losing this record to a dropped connection would send it again when
    // the attempt's lease runs out, and the delivery log would not show this attempt. Tried
    // again on a fresh connection for some seconds first (the lease is two minutes).
    const record = () =>
      db.transaction(async (tx) => {
        const settled = await repo.settleDelivery(tx, delivery.id, attempt, {
          status,
          nextAttemptAt: status === 'pending' ? next : null,
          statusCode: outcome.statusCode,
          error: outcome.error,
          deliveredAt: status === 'succeeded' ? now : null,
        });
        // Another attempt settled this delivery meanwhile (a redelivery raced it): record nothing.
        if (!settled) return 'failed' as const;
        await repo.insertAttempt(tx, {
          deliveryId: delivery.id,
          attemptedAt: now,
          statusCode: outcome.statusCode,
          latencyMs: outcome.latencyMs,
          error: outcome.error,
          nextAttemptAt: status === 'pending' ? next : null,
        });
        // A guaranteed delivery given up on is parked, and ops hear of it.
        if (status === 'failed' && delivery.deliveryClass === 'guaranteed') {
          await appendEvents(tx, now, [
            { type: 'webhook.delivery_failed', accountId: null, payload: { accountId: delivery.accountId, deliveryId: delivery.id, endpointId: delivery.endpointId, eventId: delivery.eventId, attempts: attempt } },
          ]);
        }
        return status === 'pending' ? ('retrying' as const) : status;
      });
    return retryOnConnectionError(record, RECORD_RETRY_PAUSES_MS);
  }

  async function listDeliveries(endpointId: string, viewer: Viewer, opts: { before?: string; limit: number }) {
    await mustFindEndpoint(db, endpointId, viewer);
    const rows = await repo.listDeliveriesOfEndpoint(db, endpointId, { before: opts.before, limit: opts.limit + 1 });
    const result = page(rows, opts.limit, (r) => r.id);
    const attempts = result.data.length ? await repo.listAttempts(db, result.data.map((d) => d.id)) : [];
    return {
      data: result.data.map((d) => ({
        id: d.id,
        eventId: d.eventId,
        eventType: d.eventType,
        deliveryClass: d.deliveryClass,
        status: d.status,
        attempts: attempts
          .filter((a) => a.deliveryId === d.id)
          .map((a) => ({ attemptedAt: a.attemptedAt, statusCode: a.statusCode, latencyMs: a.latencyMs, error: a.error, nextAttemptAt: a.nextAttemptAt })),
        nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
        createdAt: d.createdAt,
        deliveredAt: d.deliveredAt,
      })),
      nextCursor: result.nextCursor,
    };
  }

  /** Sends a delivery again, succeeded or failed, with a fresh retry window. */
  async function redeliver(endpointId: string, deliveryId: string, viewer: Viewer) {
    const endpoint = await mustFindEndpoint(db, endpointId, viewer);
    const now = clock.now();
    const current = await repo.findDeliveryOfEndpoint(db, endpoint.id, deliveryId);
    if (!current) throw new AppError('webhook_delivery_not_found', `No delivery ${deliveryId}`);
    // Refused while an attempt is queued or running: that would send it twice at once.
    const row = await repo.rearmDelivery(db, deliveryId, now, new Date(now.getTime() + retryWindowMs[current.deliveryClass] * deps.retryScale));
    if (!row) throw new AppError('webhook_delivery_in_flight', `Delivery ${deliveryId} is being attempted; retry shortly`);
    return { id: row.id, status: row.status };
  }

  /** An account's events, newest first: a consumer that missed deliveries catches up here. */
  async function listEvents(accountId: string, opts: { before?: number; limit: number; type?: string }) {
    const rows = await repo.listAccountEvents(db, accountId, { before: opts.before, limit: opts.limit + 1, type: opts.type });
    const result = page(rows, opts.limit, (r) => String(r.id));
    return {
      data: result.data.map((r) => ({ id: r.eventId, type: r.type, accountId: r.accountId, data: r.payload, createdAt: r.createdAt })),
      nextCursor: result.nextCursor,
    };
  }

  /**
   * Seals every signing secret with the current key: plain (legacy) ones and those under an
   * older key. Idempotent; a row rotated meanwhile keeps its new value. Secrets whose key is
   * gone from SECRETS_KEYS are listed, not fatal.
   */
  async function resealSecrets(batch = 500): Promise<{ resealed: number; unreadable: string[] }> {
    const sealedPrefix = `enc:v1:${deps.secrets.currentKeyId}:`;
    let resealed = 0;
    const unreadable: string[] = [];
    for (let after = ''; ; ) {
      const rows = await repo.listStaleSecrets(db, sealedPrefix, after, batch);
      if (rows.length === 0) break;
      for (const row of rows) {
        let set: { secret: string; previousSecret: string | null };
        try {
          set = { secret: deps.secrets.reseal(row.secret, row.id), previousSecret: row.previousSecret && deps.secrets.reseal(row.previousSecret, row.id) };
        } catch (err) {
          if (!(err instanceof SecretBoxError)) throw err;
          unreadable.push(row.id);
          continue;
        }
        if (await repo.replaceSecretsIfUnchanged(db, row, set)) resealed += 1;
      }
      after = rows.at(-1)!.id;
    }
    return { resealed, unreadable };
  }

  return { create, list, update, remove, rotateSecret, fanOut, findDue, deliver, listDeliveries, redeliver, listEvents, resealSecrets };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
