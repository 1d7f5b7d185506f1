import { BlockList, isIP } from 'node:net';

export type DeliveryClass = 'standard' | 'priority' | 'guaranteed';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Pauses between attempts (the Standard Webhooks reference schedule), the last one repeating. */
const schedule = [5_000, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR];

/** How long each class keeps retrying: standard about a day, priority about 3, guaranteed at least 3 and then parked. */
export const retryWindowMs: Record<DeliveryClass, number> = {
  standard: 24 * HOUR,
  priority: 72 * HOUR,
  guaranteed: 72 * HOUR,
};

/** The pause after `attempts` failed attempts, with ±10% jitter so receivers are not hit in waves. */
export function nextDelayMs(attempts: number, scale: number, random: () => number = Math.random): number {
  const base = schedule[Math.min(Math.max(attempts, 1) - 1, schedule.length - 1)]!;
  return Math.max(1, Math.round(base * scale * (0.9 + 0.2 * random())));
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible
  ['64:ff9b::', 96], // NAT64
  ['2002::', 16], // 6to4
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** Loopback, private, link-local, carrier-grade NAT, multicast and other non-public addresses. */
export function isNonPublicAddress(ip: string): boolean {
  // IPv4-mapped addresses (::ffff:a.b.c.d, or its hex form) are never a webhook target. They are
  // not put in the block list, which would then match every IPv4 address.
  if (/^::ffff:/i.test(ip) || /^(0{1,4}:){5}ffff:/i.test(ip)) return true;
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family === 6) return blocked.check(ip, 'ipv6');
  return true;
}

/** What is wrong with a webhook URL before any lookup, or null. */
export function urlProblem(raw: string, opts: { production: boolean }): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && !opts.production)) return 'must use https';
  if (url.username || url.password) return 'must not carry credentials';
  return null;
}
