import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from '../config.js';

/** Paths never written to logs: credentials, API keys and payment instruments. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers["idempotency-key"]',
  'headers.authorization',
  '*.authorization',
  '*.apiKey',
  '*.key',
  '*.secret',
  '*.token',
  '*.paymentToken',
  '*.cardToken',
  '*.password',
  '*.vpa',
  'BOOTSTRAP_API_KEY',
];

/**
 * Errors from the database driver carry the query's parameters (card tokens, VPAs): log the
 * error and its causes without them.
 */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  delete out.params;
  if (typeof out.message === 'string') out.message = out.message.replace(/\nparams:[\s\S]*$/, '');
  if (typeof out.stack === 'string') out.stack = out.stack.replace(/\nparams:[^\n]*/, '');
  if ((err as { cause?: unknown }).cause) out.cause = serializeError((err as { cause?: unknown }).cause);
  return out;
}

/**
 * A URL as it may be logged: the path, and the querystring with every value redacted, since
 * a caller may put a key or token there (`?api_key=...`). Parameter names stay when they
 * are short and plain.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return redactKeysInPath(url);
  const query = url
    .slice(start + 1)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      const shown = /^[\w.[\]-]{1,32}$/.test(name) ? name : '[redacted]';
      return eq < 0 ? shown : `${shown}=[redacted]`;
    });
  return `${redactKeysInPath(url.slice(0, start))}?${query.join('&')}`;
}

/** An API key pasted into a path (`/v1/accounts/bsk_...`) is a key all the same. */
const redactKeysInPath = (path: string): string => path.replace(/(^|\/)bsk_[^/?#]*/gi, '$1[redacted]');

/** Fastify's request serializer (the same fields), with the querystring redacted. */
function serializeRequest(req: {
  method?: string;
  url?: string;
  ip?: string;
  host?: string;
  headers?: Record<string, unknown>;
  socket?: { remoteAddress?: string; remotePort?: number } | null;
}): unknown {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    version: req.headers?.['accept-version'],
    host: req.host,
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
  };
}

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    serializers: { err: serializeError, req: serializeRequest },
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { service: 'billing-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino(loggerOptions(config));
}

export type { Logger };
