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

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { service: 'billing-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino(loggerOptions(config));
}

export type { Logger };
