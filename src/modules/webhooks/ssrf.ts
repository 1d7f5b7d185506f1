import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { Agent } from 'undici';
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

/**
 * An HTTP agent whose DNS lookups refuse non-public addresses: the address checked is the
 * address connected to, so a hostname cannot resolve to a public IP for the check and a
 * private one for the request (DNS rebinding).
 */
export function guardedAgent(allowedHosts: string[]): Agent {
  const lookupGuarded = ((hostname: string, options: LookupOptions, callback: (err: Error | null, address?: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as LookupAddress[];
      if (!allowedHosts.includes(hostname.toLowerCase()) && (list.length === 0 || list.some((a) => isNonPublicAddress(a.address)))) {
        return callback(new Error(`${hostname} resolves to a non-public address`));
      }
      if (options.all) return callback(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  }) as unknown as typeof dnsLookup;
  return new Agent({ connect: { lookup: lookupGuarded }, headersTimeout: 15_000, bodyTimeout: 15_000 });
}
