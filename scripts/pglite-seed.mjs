#!/usr/bin/env node
// Makes the embedded database's starting point once per PGlite release: an initialised, empty
// PGlite cluster, dumped to node_modules/.cache/billing-service/pglite-seed-<version>.tar.gz.
// PGlite's own initdb takes 6 to 10 s (it runs Postgres's bootstrap in WebAssembly); a first
// `npm start` on an empty DATA_DIR loads this dump instead, in about a second. Run by
// scripts/build-if-stale.mjs when the file for the installed PGlite is missing; without it the
// service makes its cluster the slow way, so a failure here only costs that time.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = process.env.BUILD_ROOT ?? fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, 'node_modules/@electric-sql/pglite/package.json'), 'utf8'));
const cacheDir = join(root, 'node_modules/.cache/billing-service');
const target = join(cacheDir, `pglite-seed-${version}.tar.gz`);
const { PGlite } = await import(pathToFileURL(join(root, 'node_modules/@electric-sql/pglite/dist/index.js')).href);

const scratch = join(tmpdir(), `pglite-seed-${process.pid}`);
rmSync(scratch, { recursive: true, force: true });
try {
  const db = await PGlite.create(scratch);
  const dump = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
  await db.close();
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(`${target}.${process.pid}`, dump);
  renameSync(`${target}.${process.pid}`, target); // whole or not at all
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
