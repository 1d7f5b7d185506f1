import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AppError } from '../../lib/errors.js';
import { isNonPublicAddress, urlProblem } from './domain.js';

/**
 * The SSRF guard: a webhook URL must resolve to public addresses only, unless its host is on
 * the WEBHOOK_ALLOWED_HOSTS list. Checked when an endpoint is saved and again before each
 * delivery, since DNS can change between the two.
 */
export async function assertDeliverable(raw: string, opts: { production: boolean; allowedHosts: string[] }): Promise<void> {
  const problem = urlProblem(raw, opts);
  if (problem) throw new AppError('invalid_webhook_url', `The URL ${problem}`);
  const host = new URL(raw).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (opts.allowedHosts.includes(host)) return;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw new AppError('invalid_webhook_url', `The host ${host} does not resolve`);
  }
  if (addresses.length === 0 || addresses.some(isNonPublicAddress)) {
    throw new AppError('invalid_webhook_url', `The host ${host} resolves to a loopback, private or link-local address`);
  }
}
