import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../lib/logger.js';
import { scopeSchema, validateKeyScopes, type Scope } from '../modules/auth/domain.js';
import type { createServices } from '../services.js';

/**
 * The operators' commands (`npm run ops`, and `npm run keys:create` for one of them). Every
 * argument is checked before anything else is loaded or opened: `--help`, a typo or a missing
 * option answer at once, with no database, Redis or configuration needed. Only then are the
 * service's modules imported (dynamically: they take most of the start-up time) and the
 * database opened.
 *
 * Exit codes: 0 done, 1 failed (or invariants broken), 2 bad arguments, 3 not found.
 * stdout carries the answer alone (with --json, one JSON document); notes and logs go to stderr.
 */

export const exitCodes = { done: 0, failed: 1, usage: 2, notFound: 3 } as const;

export class UsageError extends Error {}

type Option = { type: 'string' | 'boolean'; value?: string; required?: boolean; help: string };
type Values = Record<string, string | boolean | undefined>;

interface Context {
  config: Config;
  logger: Logger;
  database: Database;
  /** The service layer, made on first use (keys:create does without it). */
  services: () => Promise<ReturnType<typeof createServices>>;
  /** Writes the answer: the human text, or with --json the data alone. */
  print: (human: string, data: unknown) => void;
  json: boolean;
}

interface Command<Input> {
  name: string;
  /** The positional arguments as shown in the usage line, e.g. `<key id>`; all required. */
  args?: string[];
  summary: string;
  options?: Record<string, Option>;
  /** More lines for the command's --help. */
  notes?: string[];
  /** Checks and converts the arguments; throws UsageError. Runs before anything is opened. */
  check: (values: Values, args: string[]) => Input;
  run: (ctx: Context, input: Input) => Promise<number>;
}

const define = <Input>(command: Command<Input>) => command as Command<unknown>;

const jsonOption: Option = { type: 'boolean', help: 'print the answer as one JSON document, and nothing else' };

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function minorUnits(value: string, name: string): number {
  const n = Number(value);
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} must be a whole number of minor units, not ${value}`);
  return n;
}

function keyRequest(values: Values) {
  const listed = required(values, 'scopes').split(',').map((s) => s.trim()).filter(Boolean);
  const scopes = scopeSchema.array().min(1).safeParse(listed);
  if (!scopes.success) throw new UsageError(`--scopes must list some of: ${scopeSchema.options.join(', ')}`);
  const accountId = typeof values.account === 'string' ? values.account : null;
  const problem = validateKeyScopes(scopes.data, accountId);
  if (problem) throw new UsageError(problem);
  return { scopes: scopes.data as Scope[], accountId, name: typeof values.name === 'string' ? values.name : 'cli' };
}

const keysCreate = define({
  name: 'keys:create',
  summary: 'make an API key and print it once (only its hash is kept)',
  options: {
    scopes: { type: 'string', value: 'read,write[,kyc,ops]', required: true, help: 'what the key may do (required)' },
    account: { type: 'string', value: 'acc_...', help: 'bind the key to one account' },
    name: { type: 'string', value: 'text', help: 'a label for the key (default "cli")' },
  },
  notes: ['stdout is the key alone (with --json: id, name, scopes, account and key); a note on stderr says it is not shown again'],
  check: (values) => keyRequest(values),
  async run(ctx, input) {
    const { systemClock } = await import('../lib/clock.js');
    const { secretsKeysOf } = await import('../config.js');
    const { createKeyHasher } = await import('../modules/auth/domain.js');
    const { createAuthService, InvalidKeyRequest } = await import('../modules/auth/service.js');
    const auth = createAuthService({ db: ctx.database.db, clock: systemClock, hasher: createKeyHasher(secretsKeysOf(ctx.config)) });
    let key;
    try {
      key = await auth.createApiKey({ ...input, actor: 'cli' });
    } catch (err) {
      if (err instanceof InvalidKeyRequest) throw new UsageError(err.message);
      if ((err as { cause?: { code?: string } }).cause?.code === '23503') {
        process.stderr.write(`no account ${input.accountId}\n`);
        return exitCodes.notFound;
      }
      throw err;
    }
    ctx.print(key.key, key);
    if (!ctx.json) process.stderr.write(`created ${key.id} with scopes ${key.scopes.join(',')}${key.accountId ? ` for ${key.accountId}` : ''}; the key is not shown again\n`);
    return exitCodes.done;
  },
});

const commands: Array<Command<unknown>> = [
  keysCreate,
  define({
    name: 'keys:revoke',
    args: ['<key id>'],
    summary: 'revoke an API key (exit 3 when there is no active key with that id)',
    check: (_values, [id]) => ({ id: id! }),
    async run(ctx, { id }) {
      const { and, eq, isNull } = await import('drizzle-orm');
      const { apiKeys } = await import('../db/schema/index.js');
      const { AppError } = await import('../lib/errors.js');
      const db = ctx.database.db;
      const [row] = await db.update(apiKeys).set({ revokedAt: new Date() }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning();
      if (!row) throw new AppError('route_not_found', `no active key ${id}`);
      await audit(ctx, 'api_key.revoke', row.accountId, id, { name: row.name });
      ctx.print(`revoked ${id}`, { id, revoked: true });
      return exitCodes.done;
    },
  }),
  define({
    name: 'payments:confirm',
    args: ['<payment id>'],
    summary: 'confirm an offline payment (wire transfer, cheque) that arrived',
    options: {
      reference: { type: 'string', value: 'UTR or cheque no', required: true, help: 'the bank reference (required)' },
      amount: { type: 'string', value: 'minor units', help: 'the amount received, when it differs from the one due' },
    },
    check: (values, [id]) => ({
      id: id!,
      reference: required(values, 'reference'),
      amount: values.amount === undefined ? undefined : minorUnits(values.amount as string, 'amount'),
    }),
    async run(ctx, { id, reference, amount }) {
      const result = await (await ctx.services()).payments.confirmOffline(id, { reference, amount });
      await audit(ctx, 'payment.confirm', result.account.id, id, { reference, amount });
      ctx.print(`${id} confirmed: account ${result.account.id} is ${result.account.status}, invoice ${result.invoice?.number} ${result.invoice?.status}`, result);
      return exitCodes.done;
    },
  }),
  define({
    name: 'credits:adjust',
    args: ['<account id>'],
    summary: "add to or take from an account's prepaid credits",
    options: {
      amount: { type: 'string', value: 'signed minor units', required: true, help: 'e.g. 2500 or -2500 (required)' },
      reason: { type: 'string', value: 'text', required: true, help: 'why, kept in the ledger and the audit log (required)' },
    },
    check: (values, [accountId]) => ({ accountId: accountId!, amount: minorUnits(required(values, 'amount'), 'amount'), reason: required(values, 'reason') }),
    async run(ctx, { accountId, ...body }) {
      const credits = await (await ctx.services()).credits.adjust(accountId, body, { keyId: 'cli' });
      await audit(ctx, 'credits.adjust', accountId, accountId, body);
      ctx.print(`balance of ${accountId} is now ${credits.balance} ${credits.currency}`, credits);
      return exitCodes.done;
    },
  }),
  define({
    name: 'ledger:check',
    summary: 'check the credit ledger invariants of every account (or one); exit 1 when one is broken',
    options: { account: { type: 'string', value: 'account id', help: 'check this account only' } },
    check: (values) => ({ account: values.account as string | undefined }),
    async run(ctx, { account }) {
      const { asc } = await import('drizzle-orm');
      const { accounts } = await import('../db/schema/index.js');
      const db = ctx.database.db;
      const services = await ctx.services();
      const accountIds = account ? [account] : (await db.select({ id: accounts.id }).from(accounts).orderBy(asc(accounts.id))).map((r) => r.id);
      const violations: Array<{ accountId: string; rule: string; detail: string }> = [];
      const bar = process.stderr.isTTY && !ctx.json;
      for (const [i, accountId] of accountIds.entries()) {
        violations.push(...(await services.credits.checkInvariants(accountId)).violations);
        if (bar && (i % 25 === 0 || i === accountIds.length - 1)) {
          const done = Math.round(((i + 1) / accountIds.length) * 30);
          process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(30 - done)}] ${i + 1}/${accountIds.length}`);
        }
      }
      if (bar) process.stderr.write('\n');
      ctx.print(
        violations.length
          ? `${violations.length} violation(s) in ${accountIds.length} accounts:\n${violations.map((v) => `  ${v.accountId} ${v.rule}: ${v.detail}`).join('\n')}`
          : `ledger invariants hold for ${accountIds.length} accounts`,
        { accountsChecked: accountIds.length, violations },
      );
      return violations.length ? exitCodes.failed : exitCodes.done;
    },
  }),
  define({
    name: 'outbox:requeue',
    summary: 'relay the outbox rows not relayed yet, now',
    options: { since: { type: 'string', value: 'ISO time', help: 'also relay again the rows relayed since then' } },
    check: (values) => {
      if (values.since === undefined) return { since: undefined };
      const since = new Date(values.since as string);
      if (Number.isNaN(since.getTime())) throw new UsageError(`--since must be an ISO time, not ${values.since}`);
      return { since };
    },
    async run(ctx, { since }) {
      const { gte } = await import('drizzle-orm');
      const { outbox } = await import('../db/schema/index.js');
      const { connectRedis } = await import('../infra.js');
      const { createOutboxRelay } = await import('../jobs/outbox-relay.js');
      const { closeQueues, createQueues } = await import('../jobs/registry.js');
      const db = ctx.database.db;
      const services = await ctx.services();
      const reset = since ? (await db.update(outbox).set({ relayedAt: null, handledAt: null }).where(gte(outbox.relayedAt, since)).returning({ id: outbox.id })).length : 0;
      const redis = await connectRedis(ctx.config.REDIS_URL);
      const queues = createQueues(redis, ctx.config.QUEUE_PREFIX);
      try {
        const relay = createOutboxRelay({
          db,
          queues,
          logger: ctx.logger,
          pollMs: 1000,
          onRelay: async (tx, rows) => {
            for (const row of rows) await services.webhooks.fanOut(row, tx);
          },
        });
        const relayed = await relay.drain();
        ctx.print(`relayed ${relayed} outbox row(s)${since ? ` (${reset} reset since ${since.toISOString()})` : ''}`, { relayed, reset });
      } finally {
        await closeQueues(queues);
        await redis.quit();
      }
      return exitCodes.done;
    },
  }),
  define({
    name: 'history:maintain',
    summary: 'make the history months ahead and drop those past HISTORY_RETENTION_MONTHS, now',
    notes: [
      'The workers do the same an hour apart (and a minute after they start). A month with an event not handled or a',
      'webhook delivery pending is kept and listed as held. docs/operations.md, Partitioned history.',
    ],
    check: () => ({}),
    async run(ctx) {
      const { maintainHistory } = await import('../db/history.js');
      const result = await maintainHistory(ctx.database.db, new Date(), ctx.config.HISTORY_RETENTION_MONTHS);
      const lines = [
        `${result.partitions} month partition(s) made or found ahead`,
        `dropped: ${result.dropped.join(', ') || 'none'}`,
        ...(result.held.length ? ['held (past retention, kept):', ...result.held.map((h) => `  ${h.partition}: ${h.detail}`)] : []),
      ];
      ctx.print(lines.join('\n'), result);
      return exitCodes.done;
    },
  }),
  define({
    name: 'account:show',
    args: ['<account id>'],
    summary: "an account's state: status, KYC, plan, subscription, credits, open invoices, unsettled payments",
    check: (_values, [accountId]) => ({ accountId: accountId! }),
    async run(ctx, { accountId }) {
      const { and, eq } = await import('drizzle-orm');
      const { invoices, payments } = await import('../db/schema/index.js');
      const db = ctx.database.db;
      const services = await ctx.services();
      const account = await services.accounts.getAccount(accountId);
      const [entitlements, credits] = await Promise.all([services.accounts.entitlementsOf(accountId), services.credits.getCredits(accountId)]);
      const subscription = await services.billing.getSubscription(accountId).catch(() => null);
      const openInvoices = await db.select({ number: invoices.number, total: invoices.total, dueAt: invoices.dueAt }).from(invoices).where(and(eq(invoices.accountId, accountId), eq(invoices.status, 'open')));
      const unsettled = await db.select({ id: payments.id, status: payments.status, purpose: payments.purpose }).from(payments).where(and(eq(payments.accountId, accountId), eq(payments.status, 'unknown')));
      const state = { account, plan: entitlements.plan, outbound: entitlements.outbound, subscription, credits, openInvoices, unsettledPayments: unsettled };
      ctx.print(
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
      return exitCodes.done;
    },
  }),
  define({
    name: 'secrets:rotate',
    summary: 'seal every secret at rest with the first SECRETS_KEYS key (idempotent)',
    notes: ['exit 1 when a stored secret cannot be read: its key is no longer in SECRETS_KEYS'],
    check: () => ({}),
    async run(ctx) {
      const result = await (await ctx.services()).secrets.rotate();
      const { webhooks, apiKeys: keyHashes } = result;
      await audit(ctx, 'secrets.rotate', null, 'secrets', { webhookSecretsResealed: webhooks.resealed, unreadable: webhooks.unreadable, apiKeysRehashed: keyHashes.rehashed });
      const forms = Object.entries(keyHashes.byHashKid).map(([kid, n]) => `${kid} ${n}`).join(', ') || 'none';
      ctx.print(
        [
          `webhook secrets sealed again: ${webhooks.resealed}`,
          ...(webhooks.unreadable.length ? [`unreadable (their key is no longer in SECRETS_KEYS): ${webhooks.unreadable.join(', ')}`] : []),
          `API key hashes converted from SHA-256: ${keyHashes.rehashed}; keys by hash key: ${forms}`,
          'keys under an older key id move to the first key on their next use; remove an old key once none remain under it',
        ].join('\n'),
        result,
      );
      return webhooks.unreadable.length ? exitCodes.failed : exitCodes.done;
    },
  }),
];

async function audit(ctx: Context, action: string, accountId: string | null, target: string, details: Record<string, unknown>) {
  const { recordAudit } = await import('../modules/audit/repo.js');
  await recordAudit(ctx.database.db, { at: new Date(), actorKeyId: 'cli', action, accountId, target, requestId: null, status: null, details });
}

const exitLine = 'exit codes: 0 done, 1 failed, 2 bad arguments, 3 not found';

function synopsis(command: Command<unknown>, named: boolean): string {
  const args = command.args?.join(' ') ?? '';
  const options = Object.entries(command.options ?? {}).map(([name, o]) => {
    const text = o.type === 'string' ? `--${name} <${o.value}>` : `--${name}`;
    return o.required ? text : `[${text}]`;
  });
  return [named ? command.name : '', args, ...options, '[--json]'].filter(Boolean).join(' ');
}

/**
 * The usage of one command; `program` is how it is invoked, e.g. `npm run ops --`, and
 * `named` whether the command's name follows it (not for `npm run keys:create --`).
 */
export function commandUsage(command: Command<unknown>, program: string, named = true): string {
  const options = { ...command.options, json: jsonOption, help: { type: 'boolean', help: 'show this help' } as Option };
  const left = (name: string, o: Option) => (o.type === 'string' ? `--${name} <${o.value}>` : `--${name}`);
  const width = Math.max(...Object.entries(options).map(([n, o]) => left(n, o).length));
  return [
    `usage: ${program} ${synopsis(command, named)}`,
    '',
    `${command.summary}`,
    ...(command.notes?.length ? ['', ...command.notes] : []),
    '',
    'options:',
    ...Object.entries(options).map(([n, o]) => `  ${left(n, o).padEnd(width)}  ${o.help}`),
    '',
    exitLine,
  ].join('\n');
}

export function globalUsage(program: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `usage: ${program} <command> [arguments] [--json]`,
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `${program} <command> --help   shows a command's arguments and options`,
    exitLine,
  ].join('\n');
}

/**
 * A string option's value may look like an option (`--amount -2500`); parseArgs refuses that
 * as ambiguous. A negative number is taken as the value.
 */
function joinNegativeValues(argv: string[], options: Record<string, Option>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg.startsWith('--') && options[arg.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

type Parsed =
  | { kind: 'help'; text: string }
  | { kind: 'usage'; message: string }
  | { kind: 'run'; command: Command<unknown>; input: unknown; json: boolean };

/** Reads the arguments; nothing is loaded or opened here. */
export function parse(argv: string[], program: string, only?: string): Parsed {
  // The command comes first; `--help <command>` and `help <command>` show its help too.
  let name = only;
  let rest = argv;
  if (!only) {
    const [first, second] = argv;
    const asksHelp = first === '--help' || first === '-h' || first === 'help';
    if (first === undefined) return { kind: 'usage', message: globalUsage(program) };
    if (asksHelp && (second === undefined || second.startsWith('-'))) return { kind: 'help', text: globalUsage(program) };
    if (asksHelp) {
      name = second;
      rest = ['--help'];
    } else if (first.startsWith('-')) {
      return { kind: 'usage', message: `the command comes first, before ${first}\n\n${globalUsage(program)}` };
    } else {
      name = first;
      rest = argv.slice(1);
    }
  }
  const command = commands.find((c) => c.name === name);
  if (!command) return { kind: 'usage', message: `unknown command ${name}\n\n${globalUsage(program)}` };
  const usage = commandUsage(command, program, !only);
  const options = { ...command.options, json: jsonOption };
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(rest, options),
      allowPositionals: true,
      strict: true,
      options: { ...Object.fromEntries(Object.entries(options).map(([n, o]) => [n, { type: o.type }])), help: { type: 'boolean', short: 'h' } },
    });
    values = parsed.values as Values;
    args = parsed.positionals;
  } catch (err) {
    if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', text: usage };
    // Node's first sentence says it (the rest explains `--` to reach positionals).
    const said = (err as Error).message.split('\n')[0]!.replace(/\. To specify .*$/, '.');
    return { kind: 'usage', message: `${command.name}: ${said}\n\n${usage}` };
  }
  if (values.help) return { kind: 'help', text: usage };
  const wanted = command.args ?? [];
  if (args.length < wanted.length) return { kind: 'usage', message: `${command.name} needs ${wanted.slice(args.length).join(' ')}\n\n${usage}` };
  if (args.length > wanted.length) return { kind: 'usage', message: `${command.name}: unexpected argument ${args[wanted.length]}\n\n${usage}` };
  try {
    return { kind: 'run', command, input: command.check(values, args), json: values.json === true };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'usage', message: `${command.name}: ${err.message}\n\n${usage}` };
    throw err;
  }
}

/** Runs the command line; resolves to the exit code. `only` makes a single-command program. */
export async function runCli(argv: string[], opts: { program: string; only?: string }): Promise<number> {
  const parsed = parse(argv, opts.program, opts.only);
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.text}\n`);
    return exitCodes.done;
  }
  if (parsed.kind === 'usage') {
    process.stderr.write(`${parsed.message}\n`);
    return exitCodes.usage;
  }
  const { command, input, json } = parsed;
  const what = opts.only ?? 'ops';
  const [{ ConfigError, loadConfig }, { DataDirInUseError }, { openDatabase, StartupError }, { AppError }, { pino }, { loggerOptions }] = await Promise.all([
    import('../config.js'),
    import('../db/client.js'),
    import('../infra.js'),
    import('../lib/errors.js'),
    import('pino'),
    import('../lib/logger.js'),
  ]);
  let database: Database | undefined;
  try {
    const config = loadConfig();
    // Logs go to stderr: stdout carries the command's answer (--json) alone.
    const logger = pino(loggerOptions({ LOG_LEVEL: 'warn' }), pino.destination(2));
    database = await openDatabase(config, logger);
    const db = database;
    let services: ReturnType<typeof createServices> | undefined;
    const ctx: Context = {
      config,
      logger,
      database: db,
      services: async () => {
        const [{ createServices }, { systemClock }] = await Promise.all([import('../services.js'), import('../lib/clock.js')]);
        return (services ??= createServices({ config, database: db, clock: systemClock, logger }));
      },
      print: (human, data) => process.stdout.write(json ? `${JSON.stringify(data)}\n` : `${human}\n`),
      json,
    };
    return await command.run(ctx, input);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${command.name}: ${err.message}\n`);
      return exitCodes.usage;
    }
    if (err instanceof AppError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      return err.status === 404 ? exitCodes.notFound : exitCodes.failed;
    }
    const known = err instanceof ConfigError || err instanceof StartupError || err instanceof DataDirInUseError;
    process.stderr.write(`${known ? (err as Error).message : `${what} ${command.name} failed: ${(err as Error).stack}`}\n`);
    return exitCodes.failed;
  } finally {
    await database?.close();
  }
}
