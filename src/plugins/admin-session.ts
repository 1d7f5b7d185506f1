import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/client.js';
import { apiKeys } from '../db/schema/api-keys.js';
import type { SecretKey } from '../lib/secret-box.js';
import { grants, type Scope } from '../modules/auth/domain.js';

export const SESSION_COOKIE = 'admin_session';
export const ADMIN_PATH = '/admin';

/**
 * The operators' browser session: a cookie naming the ops key that signed in and when the
 * session ends, under an HMAC keyed from SECRETS_KEYS (the first key signs, every key of the
 * ring verifies, so a rotation does not sign everyone out). The cookie never holds the API key.
 * Stateless, so each request looks the key up by id: revoking the key ends its sessions.
 * `v1.<kid>.<keyId>.<expires, epoch s>.<mac b64url>`
 */
export function createAdminSessions(deps: { ring: readonly SecretKey[]; db: Db; now: () => Date; lifetimeSeconds: number }) {
  const macKeys = new Map(deps.ring.map((k) => [k.id, Buffer.from(hkdfSync('sha256', k.key, '', 'billing-service admin session v1', 32))]));
  const signer = deps.ring[0]!.id;
  const mac = (kid: string, body: string) => createHmac('sha256', macKeys.get(kid)!).update(body).digest('base64url');

  function issue(keyId: string): { token: string; maxAge: number } {
    const expires = Math.floor(deps.now().getTime() / 1000) + deps.lifetimeSeconds;
    const body = `v1.${signer}.${keyId}.${expires}`;
    return { token: `${body}.${mac(signer, body)}`, maxAge: deps.lifetimeSeconds };
  }

  /** The key id of a valid session whose key is still an active, unbound ops key; else null. */
  async function verify(token: string | undefined): Promise<string | null> {
    const parts = token?.split('.') ?? [];
    if (parts.length !== 5 || parts[0] !== 'v1') return null;
    const [, kid, keyId, expires, given] = parts as [string, string, string, string, string];
    if (!macKeys.has(kid) || !/^\d{1,12}$/.test(expires)) return null;
    const expected = Buffer.from(mac(kid, `v1.${kid}.${keyId}.${expires}`));
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return null;
    if (Number(expires) * 1000 <= deps.now().getTime()) return null;
    return (await isActiveOpsKey(keyId)) ? keyId : null;
  }

  async function isActiveOpsKey(keyId: string): Promise<boolean> {
    const [row] = await deps.db
      .select({ scopes: apiKeys.scopes, accountId: apiKeys.accountId })
      .from(apiKeys)
      .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
      .limit(1);
    return !!row && !row.accountId && grants(row.scopes as Scope[], 'ops');
  }

  return { issue, verify };
}

export type AdminSessions = ReturnType<typeof createAdminSessions>;

export function cookieOf(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The cookie's attributes. Secure always in production; elsewhere only when the request came
 * over https (directly, or through a TRUST_PROXY proxy saying x-forwarded-proto: https), so a
 * developer can sign in on http://localhost.
 */
export function sessionCookie(value: string, maxAge: number, secure: boolean): string {
  return [`${SESSION_COOKIE}=${value}`, `Max-Age=${maxAge}`, `Path=${ADMIN_PATH}`, 'HttpOnly', ...(secure ? ['Secure'] : []), 'SameSite=Strict'].join('; ');
}

/**
 * CSRF defence beside SameSite=Strict: a state-changing request must come from this origin.
 * Browsers send Origin on every POST; Sec-Fetch-Site stands in where a browser left it out.
 */
export function isSameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin) return origin === `${request.protocol}://${request.host}`;
  return request.headers['sec-fetch-site'] === 'same-origin';
}

/** Whether the caller is a browser asking for a page (not a script or bull-board's own fetches). */
export const wantsHtml = (request: FastifyRequest): boolean => !request.headers.authorization && /\btext\/html\b/.test(request.headers.accept ?? '');

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The sign-in page: one form, no scripts, no external assets. */
export function signInPage(opts: { message?: string; signedInAs?: string }): string {
  const body = opts.signedInAs
    ? `<p>Signed in with key <code>${escapeHtml(opts.signedInAs)}</code>.</p>
<p><a href="${ADMIN_PATH}/queues">Open the queue board</a></p>
<form method="post" action="${ADMIN_PATH}/sign-out"><button type="submit">Sign out</button></form>`
    : `${opts.message ? `<p class="error" role="alert">${escapeHtml(opts.message)}</p>` : ''}
<form method="post" action="${ADMIN_PATH}/sign-in">
<label for="key">Ops API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: billing-service operations</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0;box-sizing:border-box}input,button{padding:.5rem;font-size:1rem}.error{color:#a00}</style>
</head><body><h1>Operations</h1>
${body}
</body></html>`;
}

/** Headers for the sign-in page: nothing loads from elsewhere, it cannot be framed or cached. */
export const pageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'same-origin',
} as const;
