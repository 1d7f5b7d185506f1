import { parseArgs } from 'node:util';
import { and, asc, eq, gte, isNull } from 'drizzle-orm';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config.js';
import { DataDirInUseError } from '../db/client.js';
import { accounts, apiKeys, invoices, outbox, payments } from '../db/schema/index.js';
import { connectRedis, openDatabase, StartupError } from '../infra.js';
import { createOutboxRelay } from '../jobs/outbox-relay.js';
import { closeQueues, createQueues } from '../jobs/registry.js';
import { systemClock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { loggerOptions } from '../lib/logger.js';
import { recordAudit } from '../modules/audit/repo.js';
import { scopeSchema } from '../modules/auth/domain.js';
import { InvalidKeyRequest } from '../modules/auth/service.js';
import { createServices } from '../services.js';

const usage = `usage: npm run ops -- <command> [options] [--json]

  keys:create --scopes read,write[,kyc,ops] [--account acc_...] [--name ...]
  keys:revoke <key id>
  payments:confirm <payment id> --reference <UTR or cheque no> [--amount <minor units>]
  credits:adjust <account id> --amount <signed minor units> --reason <text>
  ledger:check [--account <account id>]        exit 1 when an invariant is broken
  outbox:requeue [--since <ISO time>]          relay unrelayed rows now; --since also re-relays rows relayed since then
  account:show <account id>
  secrets:rotate                               seal every secret at rest with the first SECRETS_KEYS key (idempotent)

exit codes: 0 done, 1 failed (or invariants broken), 2 bad arguments, 3 not found`;

class UsageError extends Error {}

/** `npm run ops`: the operator's commands, with clear exit codes and --json for scripts. */
async function main(argv: string[]): Promise<number> {
  const { values: opts, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      scopes: { type: 'string' },
      account: { type: 'string' },
      name: { type: 'string' },
      reference: { type: 'string' },
      amount: { type: 'string' },
      reason: { type: 'string' },
      since: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  const [command, target] = positionals;
  if (!command || opts.help) throw new UsageError(usage);
  const print = (human: string, data: unknown) => process.stdout.write(opts.json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new UsageError(`${command} needs ${what}\n\n${usage}`);
    return value;
  };
  const int = (value: string | undefined, what: string) => {
    const n = Number(need(value, what));
    if (!Number.isSafeInteger(n)) throw new UsageError(`${what} must be a whole number of minor units`);
    return n;
  };

  const config = loadConfig();
  // Logs go to stderr: stdout carries the command's answer (--json) alone.
  const logger = pino(loggerOptions({ LOG_LEVEL: 'warn' }), pino.destination(2));
  const database = await openDatabase(config, logger);
  const services = createServices({ config, database, clock: systemClock, logger });
  const db = database.db;
  const audit = (action: string, accountId: string | null, target: string, details: Record<string, unknown>) =>
    recordAudit(db, { at: new Date(), actorKeyId: 'cli', action, accountId, target, requestId: null, status: null, details });

  try {
    switch (command) {
      case 'keys:create': {
        const scopes = scopeSchema.array().safeParse(need(opts.scopes, '--scopes').split(','));
        if (!scopes.success) throw new UsageError(`--scopes must list some of: ${scopeSchema.options.join(', ')}`);
        const key = await services.auth.createApiKey({ name: opts.name ?? 'cli', scopes: scopes.data, accountId: opts.account ?? null, actor: 'cli' });
        print(`${key.key}\n(${key.id}, scopes ${key.scopes.join(',')}; shown once)`, key);
        return 0;
      }
      case 'keys:revoke': {
        const id = need(target, 'a key id');
        const [row] = await db.update(apiKeys).set({ revokedAt: new Date() }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning();
        if (!row) throw new AppError('route_not_found', `no active key ${id}`);
        await audit('api_key.revoke', row.accountId, id, { name: row.name });
        print(`revoked ${id}`, { id, revoked: true });
        return 0;
      }
      case 'payments:confirm': {
        const id = need(target, 'a payment id');
        const amount = opts.amount === undefined ? undefined : int(opts.amount, '--amount');
        const result = await services.payments.confirmOffline(id, { reference: need(opts.reference, '--reference'), amount });
        await audit('payment.confirm', result.account.id, id, { reference: opts.reference, amount });
        print(`${id} confirmed: account ${result.account.id} is ${result.account.status}, invoice ${result.invoice?.number} ${result.invoice?.status}`, result);
        return 0;
      }
      case 'credits:adjust': {
        const accountId = need(target, 'an account id');
        const body = { amount: int(opts.amount, '--amount'), reason: need(opts.reason, '--reason') };
        const credits = await services.credits.adjust(accountId, body, { keyId: 'cli' });
        await audit('credits.adjust', accountId, accountId, body);
        print(`balance of ${accountId} is now ${credits.balance} ${credits.currency}`, credits);
        return 0;
      }
      case 'ledger:check': {
        const accountIds = opts.account ? [opts.account] : (await db.select({ id: accounts.id }).from(accounts).orderBy(asc(accounts.id))).map((r) => r.id);
        const violations: Array<{ accountId: string; rule: string; detail: string }> = [];
        const bar = process.stderr.isTTY && !opts.json;
        for (const [i, accountId] of accountIds.entries()) {
          violations.push(...(await services.credits.checkInvariants(accountId)).violations);
          if (bar && (i % 25 === 0 || i === accountIds.length - 1)) {
            const done = Math.round(((i + 1) / accountIds.length) * 30);
            process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(30 - done)}] ${i + 1}/${accountIds.length}`);
          }
        }
        if (bar) process.stderr.write('\n');
        const summary = { accountsChecked: accountIds.length, violations };
        print(
          violations.length
            ? `${violations.length} violation(s) in ${accountIds.length} accounts:\n${violations.map((v) => `  ${v.accountId} ${v.rule}: ${v.detail}`).join('\n')}`
            : `ledger invariants hold for ${accountIds.length} accounts`,
          summary,
        );
        return violations.length ? 1 : 0;
      }
      case 'outbox:requeue': {
        let reset = 0;
        if (opts.since) {
          const since = new Date(opts.since);
          if (Number.isNaN(since.getTime())) throw new UsageError('--since must be an ISO time');
          reset = (await db.update(outbox).set({ relayedAt: null, handledAt: null }).where(gte(outbox.relayedAt, since)).returning({ id: outbox.id })).length;
        }
        const redis = await connectRedis(config.REDIS_URL);
        const queues = createQueues(redis, config.QUEUE_PREFIX);
        try {
          const relay = createOutboxRelay({
            db,
            queues,
            logger,
            pollMs: 1000,
            onRelay: async (tx, rows) => {
              for (const row of rows) await services.webhooks.fanOut(row, tx);
            },
          });
          const relayed = await relay.drain();
          print(`relayed ${relayed} outbox row(s)${opts.since ? ` (${reset} reset since ${opts.since})` : ''}`, { relayed, reset });
        } finally {
          await closeQueues(queues);
          await redis.quit();
        }
        return 0;
      }
      case 'account:show': {
        const accountId = need(target, 'an account id');
        const account = await services.accounts.getAccount(accountId);
        const [entitlements, credits] = await Promise.all([services.accounts.entitlementsOf(accountId), services.credits.getCredits(accountId)]);
        const subscription = await services.billing.getSubscription(accountId).catch(() => null);
        const openInvoices = await db.select({ number: invoices.number, total: invoices.total, dueAt: invoices.dueAt }).from(invoices).where(and(eq(invoices.accountId, accountId), eq(invoices.status, 'open')));
        const unsettled = await db.select({ id: payments.id, status: payments.status, purpose: payments.purpose }).from(payments).where(and(eq(payments.accountId, accountId), eq(payments.status, 'unknown')));
        const state = { account, plan: entitlements.plan, outbound: entitlements.outbound, subscription, credits, openInvoices, unsettledPayments: unsettled };
        print(
          [
            `${account.id}  ${account.name} <${account.email}>  ${account.country}/${account.currency}`,
            `status ${account.status}, KYC ${account.kyc.status}, plan ${entitlements.plan.name} v${entitlements.plan.version}, outbound ${entitlements.outbound}`,
            subscription ? `subscription ${subscription.id} ${subscription.status} ${subscription.billingCycle}, period to ${subscription.currentPeriod.end.toISOString()}${subscription.cancelAtPeriodEnd ? ' (cancels then)' : ''}` : 'no subscription',
            `credits ${credits.balance} ${credits.currency}${credits.autoRecharge?.enabled ? `, auto-recharge ${credits.autoRecharge.amount} below ${credits.autoRecharge.threshold}` : ''}`,
            `open invoices: ${openInvoices.map((i) => `${i.number} ${i.total} due ${i.dueAt.toISOString().slice(0, 10)}`).join(', ') || 'none'}`,
            `unknown payments: ${unsettled.map((p) => `${p.id} (${p.purpose})`).join(', ') || 'none'}`,
          ].join('\n'),
          state,
        );
        return 0;
      }
      case 'secrets:rotate': {
        const result = await services.secrets.rotate();
        const { webhooks, apiKeys: keyHashes } = result;
        await audit('secrets.rotate', null, 'secrets', { webhookSecretsResealed: webhooks.resealed, unreadable: webhooks.unreadable, apiKeysRehashed: keyHashes.rehashed });
        const forms = Object.entries(keyHashes.byHashKid).map(([kid, n]) => `${kid} ${n}`).join(', ') || 'none';
        print(
          [
            `webhook secrets sealed again: ${webhooks.resealed}`,
            ...(webhooks.unreadable.length ? [`unreadable (their key is no longer in SECRETS_KEYS): ${webhooks.unreadable.join(', ')}`] : []),
            `API key hashes converted from SHA-256: ${keyHashes.rehashed}; keys by hash key: ${forms}`,
            'keys under an older key id move to the first key on their next use; remove an old key once none remain under it',
          ].join('\n'),
          result,
        );
        return webhooks.unreadable.length ? 1 : 0;
      }
      default:
        throw new UsageError(`unknown command ${command}\n\n${usage}`);
    }
  } finally {
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError || err instanceof InvalidKeyRequest || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof AppError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      process.exit(err.status === 404 ? 3 : 1);
    }
    const known = err instanceof ConfigError || err instanceof StartupError || err instanceof DataDirInUseError;
    process.stderr.write(`${known ? err.message : `ops failed: ${(err as Error).stack}`}\n`);
    process.exit(1);
  },
);
