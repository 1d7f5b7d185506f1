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

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    serializers: { err: serializeError },
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { service: 'billing-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino(loggerOptions(config));
}

export type { Logger };
