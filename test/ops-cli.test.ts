import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { entryArgv } from './processes.js';
import { parse } from '../src/cli/cli.js';

// The ops CLI's arguments and help, and the build-on-demand script: no database needed.
const repo = new URL('..', import.meta.url).pathname;
t.setTimeout(240_000); // a few real processes and compiles, on a busy machine

/** Runs a CLI entry for real, with a database and Redis on a closed port and a bad PORT. */
function cli(file: string, ...args: string[]) {
  const env = { ...process.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:9/nowhere', REDIS_URL: 'redis://127.0.0.1:9', LOG_LEVEL: 'silent' };
  const r = spawnSync(process.execPath, [...entryArgv(`src/cli/${file.replace(/\.ts$/, '.js')}`), ...args], { cwd: repo, env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const program = 'npm run ops --';
const usageOf = (args: string[]) => {
  const parsed = parse(args, program);
  return parsed.kind === 'usage' ? parsed.message : `(${parsed.kind})`;
};
const helpOf = (args: string[], only?: string) => {
  const parsed = parse(args, only ? 'npm run keys:create --' : program, only);
  return parsed.kind === 'help' ? parsed.text : `(${parsed.kind})`;
};

t.test('ops --help exits 0 with the overview; an unknown command exits 2 before the database is opened', async (t) => {
  const help = cli('ops.ts', '--help');
  t.equal(help.code, 0, '--help: 0');
  t.match(help.out, /^usage: npm run ops -- <command>/);
  for (const name of ['keys:create', 'keys:revoke', 'payments:confirm', 'credits:adjust', 'ledger:check', 'outbox:requeue', 'history:maintain', 'account:show', 'secrets:rotate']) {
    t.match(help.out, new RegExp(`\\n  ${name} `), `the overview lists ${name}`);
  }
  t.equal(help.err, '');

  const own = cli('ops.ts', 'credits:adjust', '--help');
  t.equal(own.code, 0, 'a command --help: 0');
  t.match(own.out, /^usage: npm run ops -- credits:adjust <account id> --amount <signed minor units> --reason <text> \[--json\]\n/, "the command's own usage");

  // DATABASE_URL is a closed port: a command that opened it would fail (1), not answer 2.
  const unknown = cli('ops.ts', 'nonsense');
  t.equal(unknown.code, 2, 'an unknown command: 2');
  t.match(unknown.err, /^unknown command nonsense\n\nusage: npm run ops -- <command>/, 'with the usage');
  t.notMatch(unknown.err, /Postgres|ECONNREFUSED/, 'before the database');
  t.equal(unknown.out, '');
  const bad = cli('ops.ts', 'credits:adjust', 'acc_x', '--amount', '1.5', '--reason', 'r');
  t.equal(bad.code, 2, 'bad arguments: 2, also before the database');
  t.match(bad.err, /^credits:adjust: --amount must be a whole number of minor units, not 1\.5\n\nusage: npm run ops -- credits:adjust/);
  // A negative amount is a value, not an option: it gets as far as the (closed) database.
  const negative = cli('ops.ts', 'credits:adjust', 'acc_x', '--amount', '-2500', '--reason', 'r');
  t.equal(negative.code, 1, 'a database that does not answer: 1');
  t.match(negative.err, /Postgres does not answer/);

  const keys = cli('keys-create.ts', '--help');
  t.equal(keys.code, 0, 'keys:create --help: 0');
  t.match(keys.out, /^usage: npm run keys:create -- --scopes <read,write\[,kyc,ops\]> \[--account <acc_\.\.\.>\] \[--name <text>\] \[--json\]\n/);
});

t.test("each command's --help is its own usage", async (t) => {
  const overview = helpOf(['--help']);
  t.match(overview, /^usage: npm run ops -- <command> \[arguments\] \[--json\]\n/);
  t.same(helpOf(['help']), overview, '`help` is --help');
  t.same(helpOf(['-h']), overview);
  const usages = {
    'keys:create': /^usage: npm run ops -- keys:create --scopes <read,write\[,kyc,ops\]> \[--account <acc_\.\.\.>\] \[--name <text>\] \[--json\]\n/,
    'keys:revoke': /^usage: npm run ops -- keys:revoke <key id> \[--json\]\n/,
    'payments:confirm': /^usage: npm run ops -- payments:confirm <payment id> --reference <UTR or cheque no> \[--amount <minor units>\] \[--json\]\n/,
    'credits:adjust': /^usage: npm run ops -- credits:adjust <account id> --amount <signed minor units> --reason <text> \[--json\]\n/,
    'ledger:check': /^usage: npm run ops -- ledger:check \[--account <account id>\] \[--json\]\n/,
    'outbox:requeue': /^usage: npm run ops -- outbox:requeue \[--since <ISO time>\] \[--json\]\n/,
    'history:maintain': /^usage: npm run ops -- history:maintain \[--json\]\n/,
    'account:show': /^usage: npm run ops -- account:show <account id> \[--json\]\n/,
    'secrets:rotate': /^usage: npm run ops -- secrets:rotate \[--json\]\n/,
  };
  for (const [name, usage] of Object.entries(usages)) {
    const help = helpOf([name, '--help']);
    t.match(help, usage, `${name} --help`);
    t.match(help, /\n {2}--help +show this help\n/);
    t.match(help, /exit codes: 0 done, 1 failed, 2 bad arguments, 3 not found$/);
    t.notMatch(help, /\ncommands:/, 'not the overview');
    t.same(helpOf(['help', name]), help, `help ${name}`);
    t.same(helpOf(['--help', name]), help, `--help ${name}`);
  }
  t.match(helpOf(['payments:confirm', 'pay_x', '--reference', 'r', '-h']), usages['payments:confirm'], '--help wins over the other arguments');
  t.match(helpOf(['keys:create', '--bogus', '--help']), usages['keys:create'], 'even over an unknown option');
  t.match(helpOf(['--help'], 'keys:create'), /^usage: npm run keys:create -- --scopes/, 'npm run keys:create -- --help');
});

t.test('bad arguments are named, with the command usage; nothing is opened to find them', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^usage: npm run ops -- <command>/],
    [['nonsense'], /^unknown command nonsense\n\nusage: npm run ops -- <command>/],
    [['--json', 'ledger:check'], /^the command comes first, before --json\n/],
    [['keys:create'], /^keys:create: --scopes is required\n\nusage: npm run ops -- keys:create --scopes/],
    [['keys:create', '--scopes', 'admin'], /^keys:create: --scopes must list some of: read, write, kyc, ops\n/],
    [['keys:create', '--scopes', ','], /^keys:create: --scopes must list some of/],
    [['keys:create', '--scopes', 'ops', '--account', 'acc_x'], /a key bound to an account may only have the read and write scopes/],
    [['keys:create', '--scopes', 'read', '--bogus'], /^keys:create: Unknown option '--bogus'\.\n\nusage: npm run ops -- keys:create/],
    [['keys:create', '--scopes'], /^keys:create: Option '--scopes <value>' argument missing\n/],
    [['keys:revoke'], /^keys:revoke needs <key id>\n\nusage: npm run ops -- keys:revoke <key id>/],
    [['keys:revoke', 'key_a', 'key_b'], /^keys:revoke: unexpected argument key_b\n/],
    [['credits:adjust', 'acc_x', '--amount', '10'], /^credits:adjust: --reason is required\n/],
    [['credits:adjust', 'acc_x', '--reason', 'r'], /^credits:adjust: --amount is required\n/],
    [['credits:adjust', 'acc_x', '--amount', '1e3', '--reason', 'r'], /--amount must be a whole number of minor units, not 1e3/],
    [['payments:confirm', 'pay_x'], /^payments:confirm: --reference is required\n/],
    [['payments:confirm', 'pay_x', '--reference', 'r', '--amount', 'ten'], /--amount must be a whole number/],
    [['outbox:requeue', '--since', 'yesterday'], /^outbox:requeue: --since must be an ISO time, not yesterday\n/],
    [['ledger:check', 'acc_x'], /^ledger:check: unexpected argument acc_x\n/],
    [['secrets:rotate', '--json=yes'], /^secrets:rotate: /],
  ];
  for (const [args, said] of cases) t.match(usageOf(args), said, args.join(' ') || '(no arguments)');

  const run = (args: string[]) => {
    const parsed = parse(args, program);
    return parsed.kind === 'run' ? { command: parsed.command.name, input: parsed.input, json: parsed.json } : parsed;
  };
  t.same(run(['credits:adjust', 'acc_x', '--amount', '-2500', '--reason', 'goodwill back', '--json']), {
    command: 'credits:adjust',
    input: { accountId: 'acc_x', amount: -2500, reason: 'goodwill back' },
    json: true,
  }, 'a negative amount is the value of --amount');
  t.same(run(['keys:create', '--scopes', 'read, write', '--account', 'acc_x']), {
    command: 'keys:create',
    input: { scopes: ['read', 'write'], accountId: 'acc_x', name: 'cli' },
    json: false,
  });
  t.same(run(['outbox:requeue', '--since', '2026-12-01T00:00:00Z']), { command: 'outbox:requeue', input: { since: new Date('2026-12-01T00:00:00Z') }, json: false });
});

t.test('build-if-stale builds only when the sources changed, and never fails an install', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'billing-build-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}\n');
  const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', strict: true, outDir: 'dist', rootDir: 'src', types: [] }, include: ['src/**/*.ts'] };
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify(tsconfig));
  const build = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(repo, 'scripts/build-if-stale.mjs'), ...args], { cwd: root, env: { ...process.env, BUILD_ROOT: root }, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const later = (file: string, seconds: number) => utimesSync(file, new Date(), new Date(Date.now() + seconds * 1000));

  // The Dockerfile's build stage runs `npm ci` before src/ is copied in.
  t.same(build('--prepare'), { code: 0, out: '', err: '' }, 'no src/ yet: nothing to do at install');

  mkdirSync(join(root, 'src'));
  const main = join(root, 'src/main.ts');
  writeFileSync(main, 'export const answer: number = 42;\n');
  const first = build();
  t.equal(first.code, 0);
  t.match(first.err, /building dist\/ from src\/ \(no build yet\)/);
  t.equal(first.out, '', 'nothing on stdout: it belongs to the command that follows');
  for (const file of ['main.js', 'main.js.map', '.build-stamp']) t.ok(existsSync(join(root, 'dist', file)), `dist/${file}`);

  t.same(build(), { code: 0, out: '', err: '' }, 'unchanged: no build, not a word');

  writeFileSync(main, 'export const answer: number = 43;\n');
  later(main, 2);
  t.match(build().err, /building dist\/ from src\/ \(sources changed\)/, 'an edited source: built again');
  t.equal(build().err, '', 'and fresh after');
  writeFileSync(join(root, 'src/extra.ts'), 'export const more = 1;\n');
  t.match(build().err, /sources changed/, 'a new source file counts');
  rmSync(join(root, 'src/extra.ts'));
  t.match(build().err, /sources changed/, 'so does a removed one');
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify({ ...tsconfig, compilerOptions: { ...tsconfig.compilerOptions, sourceMap: true } }));
  t.match(build().err, /sources changed/, 'and tsconfig.json');
  t.match(build('--force').err, /building dist\/ from src\/ \(requested\)/, '--force builds anyway');

  // A process started from the earlier build still finds its lazily imported chunks after a rebuild; a day later they go.
  writeFileSync(join(root, 'src/lazy.ts'), 'export const lazy = "v1";\n');
  writeFileSync(main, 'export const answer = async () => (await import("./lazy.js")).lazy;\n');
  t.equal(build().code, 0);
  const chunks = () => readdirSync(join(root, 'dist/chunks')).filter((f) => f.endsWith('.js'));
  const [v1] = chunks();
  t.ok(v1, `a chunk for the lazy import (${v1})`);
  writeFileSync(join(root, 'src/lazy.ts'), 'export const lazy = "v2";\n');
  later(join(root, 'src/lazy.ts'), 6);
  t.match(build().err, /sources changed/);
  t.ok(chunks().includes(v1!) && chunks().length === 2, 'the earlier build\'s chunk is kept beside the new one');
  const dayOld = new Date(Date.now() - 25 * 3600_000);
  utimesSync(join(root, 'dist/chunks', v1!), dayOld, dayOld);
  t.match(build('--force').err, /requested/);
  t.notOk(chunks().includes(v1!), 'a day later it is deleted');
  t.equal(chunks().length, 1, 'the current chunk stays');

  writeFileSync(main, 'export const answer: number = ;\n');
  later(main, 4);
  const broken = build();
  t.equal(broken.code, 1, 'a syntax error fails the start or build');
  t.match(broken.err, /ERROR[\s\S]*main\.ts[\s\S]*esbuild failed/);
  t.notOk(existsSync(join(root, 'dist/.build-stamp')), 'and leaves the tree stale');
  t.equal(build('--prepare').code, 0, 'but not the install');
  t.equal(build().code, 1, 'still stale: the next start builds again');
});
