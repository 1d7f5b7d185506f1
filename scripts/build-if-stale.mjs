#!/usr/bin/env node
// Builds src/ into dist/ only when the sources changed since the last good build, so that
// `npm start`, `npm run migrate`, `npm run ops` and `npm run keys:create` start at once on a
// built tree. Plain Node on purpose: it runs before anything is built, and without tsx.
//
//   node scripts/build-if-stale.mjs            build when stale, else do nothing (in ~50 ms)
//   node scripts/build-if-stale.mjs --force    build now (`npm run build`)
//   node scripts/build-if-stale.mjs --prepare  at `npm ci`/`npm install`: build when it can;
//                                              never fails the install (no src/ yet, as in the
//                                              Dockerfile's build stage; no esbuild, as with
//                                              --omit=dev; a build error: shown, and the next
//                                              start or build tries again)
//
// esbuild bundles each process's entry (main, server, worker, migrate, cli/ops,
// cli/keys-create) with the code they share split into dist/chunks/, in about a second.
// Types are checked by `npm run typecheck` (tsc), not here. drizzle-orm is bundled in: Node 22
// and 24 re-read a package's package.json for every module file they load from it
// (nodejs/node#58126), and drizzle-orm's is 179 KB, which cost every process 1 to 1.5 s at
// start. Every other dependency stays in node_modules, loaded as published (some read files
// of their own at run time: fonts, the queue board's pages, PGlite's WebAssembly).
//
// The inputs are every file under src/ plus tsconfig.json, package.json and
// package-lock.json. After a successful build the script writes dist/.build-stamp with a
// fingerprint of the inputs (path, size and mtime of each file) taken before building: any
// later edit, new file or deleted file makes the tree stale. Concurrent runs (several `npm
// start`s in one checkout) take turns through a lock directory, and the later ones find the
// tree fresh. Messages go to stderr: stdout belongs to the command that runs next
// (`npm run ops -- ... --json`).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const prepare = args.has('--prepare');
// BUILD_ROOT: another project laid out the same way (the tests use a small one).
const root = process.env.BUILD_ROOT ?? fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const stampFile = join(dist, '.build-stamp');
const lockDir = join(root, '.build.lock');
const say = (line) => process.stderr.write(`build: ${line}\n`);

function inputs() {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) files.push(path);
    }
  };
  walk(join(root, 'src'));
  for (const name of ['tsconfig.json', 'package.json', 'package-lock.json']) if (existsSync(join(root, name))) files.push(join(root, name));
  return files.sort();
}

function fingerprint() {
  const hash = createHash('sha256');
  for (const file of inputs()) {
    const s = statSync(file);
    hash.update(`${relative(root, file)}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

function builtFrom() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8')).inputs;
  } catch {
    return null;
  }
}

function loadEsbuild() {
  try {
    return createRequire(join(root, 'package.json'))('esbuild');
  } catch {
    return null;
  }
}

/** The processes' entry points, under src/; each becomes dist/<name>.js. */
const entries = ['main', 'server', 'worker', 'migrate', 'cli/ops', 'cli/keys-create'];
/** Dependencies bundled into dist/ rather than loaded from node_modules (see the top). */
const bundled = new Set(['drizzle-orm']);

function bundle(esbuild) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const external = Object.keys(pkg.dependencies ?? {})
    .filter((name) => !bundled.has(name))
    .flatMap((name) => [name, `${name}/*`]);
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: entries.filter((e) => existsSync(join(root, 'src', `${e}.ts`))).map((e) => `src/${e}.ts`),
    outdir: 'dist',
    outbase: 'src',
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    external,
    logLevel: 'error',
    metafile: true,
  });
  pruneOldOutputs(new Set(Object.keys(result.metafile.outputs).map((file) => join(root, file))));
}

/** How long files of an earlier build stay in dist/ (see pruneOldOutputs). */
const KEEP_OLD_OUTPUTS_MS = 24 * 3600_000;

/**
 * dist/ is not emptied before a build: a process started from the earlier build (`npm start`
 * while `npm run ops` rebuilds an edited tree) still imports its chunks lazily, by their
 * hashed names, and would fail on a missing one. Files this build did not write are deleted
 * once they are a day old.
 */
function pruneOldOutputs(made) {
  const cutoff = Date.now() - KEEP_OLD_OUTPUTS_MS;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path !== stampFile && !made.has(path) && statSync(path).mtimeMs < cutoff) rmSync(path, { force: true });
    }
  };
  if (existsSync(dist)) walk(dist);
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Holds the lock while fn runs; a lock older than ten minutes is a crashed run's and is taken. */
function withLock(fn) {
  let waited = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let age = 0;
      try {
        age = Date.now() - statSync(lockDir).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > 600_000) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited) say('another build is running; waiting for it');
      waited = true;
      sleep(250);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/**
 * The embedded database's seed for the installed PGlite (scripts/pglite-seed.mjs), made when
 * missing: a first `npm start` then loads it instead of running initdb. Best effort.
 */
function ensurePgliteSeed() {
  if (!existsSync(join(root, 'scripts/pglite-seed.mjs'))) return;
  let version;
  try {
    version = JSON.parse(readFileSync(join(root, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version;
  } catch {
    return; // no PGlite here (another project, or --omit=dev trimmed it)
  }
  if (existsSync(join(root, `node_modules/.cache/billing-service/pglite-seed-${version}.tar.gz`))) return;
  const started = Date.now();
  const result = spawnSync(process.execPath, [join(root, 'scripts/pglite-seed.mjs')], { cwd: root, stdio: ['ignore', 2, 2], env: { ...process.env, BUILD_ROOT: root } });
  if (result.status === 0) say(`embedded database seed made in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  else say('could not make the embedded database seed; a first start on an empty DATA_DIR runs initdb instead (slower)');
}

function main() {
  if (!existsSync(join(root, 'src'))) {
    if (prepare) return 0; // the Dockerfile's `npm ci` runs before src/ is copied in
    say('no src/ to compile');
    return existsSync(join(dist, 'main.js')) ? 0 : 1;
  }
  const fresh = () => !force && existsSync(join(dist, 'main.js')) && builtFrom() === fingerprint();
  if (fresh()) {
    if (prepare) ensurePgliteSeed();
    return 0;
  }
  const esbuild = loadEsbuild();
  if (!esbuild) {
    if (prepare) return 0; // `npm ci --omit=dev`: nothing to build with
    if (existsSync(join(dist, 'main.js'))) {
      say('src/ changed since dist/ was built, but esbuild is not installed (npm ci --omit=dev?): running the existing dist/');
      return 0;
    }
    say('dist/ is missing and esbuild is not installed: run `npm ci` (with dev dependencies), then `npm run build`');
    return 1;
  }
  return withLock(() => {
    if (fresh()) return 0; // built by the run we waited for
    const before = fingerprint();
    say(`building dist/ from src/ (${force ? 'requested' : existsSync(stampFile) ? 'sources changed' : 'no build yet'})`);
    const started = Date.now();
    try {
      bundle(esbuild);
    } catch (err) {
      rmSync(stampFile, { force: true });
      say(`esbuild failed; dist/ is not up to date${err.errors ? '' : `: ${err.message}`}`); // esbuild printed its errors
      return prepare ? 0 : 1;
    }
    mkdirSync(dist, { recursive: true });
    writeFileSync(stampFile, `${JSON.stringify({ inputs: before, builtAt: new Date().toISOString() })}\n`);
    say(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    ensurePgliteSeed();
    return 0;
  });
}

let code;
try {
  code = main();
} catch (err) {
  say(`failed: ${err.stack ?? err}`);
  code = prepare ? 0 : 1;
}
process.exitCode = code;
