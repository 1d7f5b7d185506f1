import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';

/** Helpers for tests that run the service's processes for real. */
export const root = new URL('..', import.meta.url).pathname;

let built = false;
/**
 * The argv that runs a process entry (`src/server.ts`, `src/cli/ops.ts`) as it ships: its
 * bundle under dist/, rebuilt first when src/ changed (scripts/build-if-stale.mjs, about a
 * second). Faster to start than the sources under tsx, and what operators run.
 */
export function entryArgv(entry: string): string[] {
  if (!built) {
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-if-stale.mjs')], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not build dist/: ${r.stderr}`);
    built = true;
  }
  return [join(root, 'dist', entry.replace(/^src\//, '').replace(/\.ts$/, '.js'))];
}

export interface Running {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

export function run(t: Test, entry: string, env: Record<string, string>, args: string[] = []): Running {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'PORT', 'BOOTSTRAP_API_KEY'].includes(k)));
  const child = spawn(process.execPath, [...entryArgv(entry), ...args], {
    cwd: root,
    env: { ...cleanEnv, LOG_LEVEL: 'warn', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (c) => (err += c));
  child.stdout!.on('data', (c) => (out += c));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => err, stdout: () => out, exit };
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

export async function until<T>(fn: () => T | Promise<T>, what: string, ms = 90_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
