#!/usr/bin/env node
// Compiles src/ to dist/ only when the sources changed since the last good build, so that
// `npm start`, `npm run migrate`, `npm run ops` and `npm run keys:create` start at once on a
// built tree. Plain Node on purpose: it runs before anything is compiled, and without tsx.
//
//   node scripts/build-if-stale.mjs            build when stale, else do nothing (in ~50 ms)
//   node scripts/build-if-stale.mjs --force    build now (`npm run build`)
//   node scripts/build-if-stale.mjs --prepare  at `npm ci`/`npm install`: build when it can;
//                                              never fails the install (no src/ yet, as in the
//                                              Dockerfile's build stage; no TypeScript, as with
//                                              --omit=dev; a compile error: shown, and the next
//                                              start or build tries again)
//
// The inputs are every file under src/ plus tsconfig.json and package-lock.json. After a
// successful `tsc -p tsconfig.json` the script writes dist/.build-stamp with a fingerprint of
// the inputs (path, size and mtime of each file) taken before compiling: any later edit, new
// file or deleted file makes the tree stale. tsc runs with --incremental (its state kept in
// dist/.tsbuildinfo), so a rebuild after a small change is quicker than a cold one. Concurrent
// runs (several `npm start`s in one checkout) take turns through a lock directory, and the
// later ones find the tree fresh. Messages go to stderr: stdout belongs to the command that
// runs next (`npm run ops -- ... --json`).
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
  for (const name of ['tsconfig.json', 'package-lock.json']) if (existsSync(join(root, name))) files.push(join(root, name));
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

function findTsc() {
  try {
    return createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return null;
  }
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

function main() {
  if (!existsSync(join(root, 'src'))) {
    if (prepare) return 0; // the Dockerfile's `npm ci` runs before src/ is copied in
    say('no src/ to compile');
    return existsSync(join(dist, 'main.js')) ? 0 : 1;
  }
  const fresh = () => !force && existsSync(join(dist, 'main.js')) && builtFrom() === fingerprint();
  if (fresh()) return 0;
  const tsc = findTsc();
  if (!tsc) {
    if (prepare) return 0; // `npm ci --omit=dev`: nothing to compile with
    if (existsSync(join(dist, 'main.js'))) {
      say('src/ changed since dist/ was built, but TypeScript is not installed (npm ci --omit=dev?): running the existing dist/');
      return 0;
    }
    say('dist/ is missing and TypeScript is not installed: run `npm ci` (with dev dependencies), then `npm run build`');
    return 1;
  }
  return withLock(() => {
    if (fresh()) return 0; // built by the run we waited for
    const before = fingerprint();
    say(`compiling src/ to dist/ (${force ? 'requested' : existsSync(stampFile) ? 'sources changed' : 'no build yet'})`);
    const started = Date.now();
    const result = spawnSync(
      process.execPath,
      [tsc, '-p', join(root, 'tsconfig.json'), '--incremental', '--tsBuildInfoFile', join(dist, '.tsbuildinfo')],
      { cwd: root, stdio: ['ignore', 2, 2] }, // tsc prints its errors on stdout: send them to stderr
    );
    if (result.status !== 0) {
      rmSync(stampFile, { force: true });
      say(`tsc failed (${result.status ?? result.signal}); dist/ is not up to date`);
      return prepare ? 0 : 1;
    }
    mkdirSync(dist, { recursive: true });
    writeFileSync(stampFile, `${JSON.stringify({ inputs: before, builtAt: new Date().toISOString() })}\n`);
    say(`compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);
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
