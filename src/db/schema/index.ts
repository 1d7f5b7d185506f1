export * from './catalog.js';
export * from './accounts.js';
export * from './api-keys.js';
export * from './outbox.js';
export * from './notifications.js';
export * from './idempotency.js';
