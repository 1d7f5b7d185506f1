import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, secretsKeysOf } from '../config.js';
import { DataDirInUseError } from '../db/client.js';
import { openDatabase, StartupError } from '../infra.js';
import { systemClock } from '../lib/clock.js';
import { createLogger } from '../lib/logger.js';
import { createKeyHasher, scopeSchema } from '../modules/auth/domain.js';
import { createAuthService, InvalidKeyRequest } from '../modules/auth/service.js';

const usage = 'usage: npm run keys:create -- --scopes read,write[,kyc,ops] [--account acc_...] [--name "..."] [--json]';

/** `npm run keys:create`: makes an API key and prints it once. Exit 2 on bad arguments. */
async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: { scopes: { type: 'string' }, account: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  const scopes = scopeSchema.array().safeParse((args.scopes ?? '').split(',').filter(Boolean));
  if (!args.scopes || !scopes.success) {
    process.stderr.write(`--scopes must list some of: ${scopeSchema.options.join(', ')}\n${usage}\n`);
    return 2;
  }
  const config = loadConfig();
  const logger = createLogger({ LOG_LEVEL: 'warn' });
  const database = await openDatabase(config, logger);
  try {
    const auth = createAuthService({ db: database.db, clock: systemClock, hasher: createKeyHasher(secretsKeysOf(config)) });
    const key = await auth.createApiKey({ name: args.name ?? 'cli', scopes: scopes.data, accountId: args.account ?? null, actor: 'cli' });
    if (args.json) process.stdout.write(`${JSON.stringify(key)}\n`);
    else process.stdout.write(`${key.key}\n`);
    process.stderr.write(`created ${key.id} with scopes ${key.scopes.join(',')}${key.accountId ? ` for ${key.accountId}` : ''}; the key is not shown again\n`);
    return 0;
  } catch (err) {
    if (err instanceof InvalidKeyRequest) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if ((err as { cause?: { code?: string } }).cause?.code === '23503') {
      process.stderr.write(`no account ${args.account}\n`);
      return 2;
    }
    throw err;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    const known = err instanceof ConfigError || err instanceof StartupError || err instanceof DataDirInUseError;
    process.stderr.write(`${known ? err.message : `keys:create failed: ${(err as Error).stack}`}\n`);
    process.exit(1);
  },
);
