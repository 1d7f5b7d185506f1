import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { errorCodes, problemType, type ErrorCode } from '../lib/errors.js';
import { webhooksDocument } from '../modules/events/catalogue.js';

export const apiDescription = `Headless billing and subscription engine of a cloud-telephony platform: plans and
entitlements, trial accounts, KYC, upgrades, invoices, prepaid credits.

**Authentication**: \`Authorization: Bearer <api key>\`. Keys carry scopes (\`read\`, \`write\`, \`kyc\`, \`ops\`;
\`ops\` implies the others, \`write\` implies \`read\`) and may be bound to one account, which then cannot see
any other: another account's id answers 404.

**Errors**: RFC 9457 \`application/problem+json\` with a stable \`code\` and the \`requestId\`. Besides the statuses
each operation lists, any path answers a method it does not route with 405 \`method_not_allowed\` and an \`Allow\`
header, and a path that does not exist with 404 \`route_not_found\`; a 401 carries \`WWW-Authenticate: Bearer
realm="billing-service"\` (with \`error="invalid_token"\` when the key sent is not valid).

**Money**: integer minor units (paise, cents) with an ISO currency. **Lists**: cursor pagination
(\`limit\`, \`cursor\` = the previous page's \`nextCursor\`).`;

type MediaType = { schema?: { $ref?: string }; example?: unknown; examples?: Record<string, { summary?: string; value: unknown }> };
type Operation = {
  operationId?: string;
  parameters?: unknown[];
  security?: unknown[];
  responses?: Record<string, { description?: string; content?: Record<string, MediaType> }>;
};
type OpenApiDocument = {
  paths?: Record<string, Record<string, Operation>>;
  webhooks?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, { examples?: unknown[] }> };
};

/** The server the document names by default; a deployment passes its own (the plugin's `servers`). */
export const defaultServers = [{ url: '/', description: 'The instance serving this document (its /docs); locally `npm run dev` listens on http://localhost:3000' }];

/** What each error status shows when its description names no code of that status. */
const defaultProblemCodes: Record<string, ErrorCode> = {
  '400': 'validation_failed',
  '401': 'unauthenticated',
  '402': 'payment_declined',
  '403': 'insufficient_scope',
  '404': 'route_not_found',
  '405': 'method_not_allowed',
  '409': 'idempotency_request_in_progress',
  '413': 'payload_too_large',
  '414': 'uri_too_long',
  '415': 'unsupported_media_type',
  '422': 'idempotency_key_reused',
  '429': 'rate_limited',
  '500': 'internal_error',
  '503': 'database_unavailable',
};

const problemDetails: Partial<Record<ErrorCode, string>> = {
  validation_failed: 'body.name: Too small: expected string to have >=1 characters',
  unauthenticated: 'Send a valid API key as `Authorization: Bearer <key>`',
  insufficient_scope: 'This operation needs the write scope',
  method_not_allowed: 'PATCH is not allowed on this path; allowed: GET, HEAD',
  uri_too_long: 'The URL is longer than 8192 characters',
  rate_limited: 'Over the rate limit of this API key; retry in 12 s',
  database_unavailable: 'The database connection was lost; retry the request',
};

/**
 * An example of each error status of an operation: the first code its description names that
 * answers with this status, else the usual code of the status (a 404 of an operation on an
 * account: account_not_found). One Problem example would show the same 409 for every status.
 */
function problemExample(status: string, description: string, path: string): { summary: string; value: Record<string, unknown> } {
  const named = [...description.matchAll(/`([a-z_]+)`/g)]
    .map((m) => m[1] as ErrorCode)
    .find((code) => code in errorCodes && String(errorCodes[code].status) === status);
  const fallback: ErrorCode | undefined = status === '404' && path.includes('{accountId}') ? 'account_not_found' : defaultProblemCodes[status];
  const code = named ?? fallback ?? (Object.keys(errorCodes) as ErrorCode[]).find((c) => String(errorCodes[c].status) === status) ?? 'internal_error';
  const { title } = errorCodes[code];
  const value: Record<string, unknown> = { type: problemType(code), title, status: errorCodes[code].status };
  if (code !== 'internal_error') value.detail = problemDetails[code] ?? title;
  value.code = code;
  value.requestId = 'req-1a2b3c';
  value.instance = path.replace(/\{(\w+)\}/g, (_, name: string) => `${name.replace(/Id$/, '').slice(0, 3)}_01kb2m3n4p5q6r7s8t9v0w1x2y`);
  if (code === 'validation_failed') value.errors = [{ path: 'body.name', message: 'Too small: expected string to have >=1 characters' }];
  return { summary: code, value };
}

/**
 * A 202 answers a payment the gateway did not confirm: its example is the component's own with
 * the status of that case, instead of the 201's.
 */
function acceptedExample(doc: OpenApiDocument, schemaRef: string | undefined, operationId: string | undefined): { summary: string; value: unknown } | undefined {
  const name = schemaRef?.replace('#/components/schemas/', '');
  const example = name ? (doc.components?.schemas?.[name]?.examples?.[0] as Record<string, any> | undefined) : undefined;
  if (!example || !('payment' in example)) return undefined;
  const payment = { ...example.payment, status: 'unknown' };
  if (name === 'PaymentResult') {
    // An upgrade not yet paid leaves the account in trial, without a subscription.
    const upgrade = operationId === 'upgradeAccount' ? { account: { ...example.account, status: 'trial' }, subscription: null } : {};
    return {
      summary: 'payment_unknown: the gateway did not answer',
      value: { ...example, status: 'payment_unknown', ...upgrade, invoice: example.invoice && { ...example.invoice, status: 'open' }, payment },
    };
  }
  return { summary: 'payment_unknown: the gateway did not answer', value: { ...example, status: 'payment_unknown', payment } };
}

/** Standard Webhooks headers, sent on every delivery. */
const webhookHeaders = [
  {
    name: 'webhook-id',
    in: 'header',
    required: true,
    description: 'The event id: the same on every retry of the event (deduplicate on it)',
    schema: { type: 'string' },
    example: 'evt_01kb2m3n4p5q6r7s8t9v0w1x2y',
  },
  {
    name: 'webhook-timestamp',
    in: 'header',
    required: true,
    description: 'When this attempt was sent, in seconds since the Unix epoch: refuse one far from your clock (replays)',
    schema: { type: 'string', pattern: '^[0-9]+$' },
    example: '1795687200',
  },
  {
    name: 'webhook-signature',
    in: 'header',
    required: true,
    description:
      'Space-separated signatures `v1,<base64>`: HMAC-SHA256 of `id.timestamp.body` with the endpoint secret (after its `whsec_` prefix, base64-decoded). ' +
      'More than one while a rotated secret is still honoured',
    schema: { type: 'string', pattern: '^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$' },
    example: 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
  },
];

/** Webhooks are requests the service sends: signed, not bearer-authenticated, and their headers are parameters. */
function tidyWebhooks(webhooks: Record<string, Record<string, Operation>>): Record<string, Record<string, Operation>> {
  for (const operations of Object.values(webhooks)) {
    for (const operation of Object.values(operations)) {
      operation.security = [];
      operation.parameters = [...webhookHeaders, ...(operation.parameters ?? [])];
    }
  }
  return webhooks;
}

const statusTexts: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '204': 'No Content' };

/**
 * Names success responses (the generator calls them all "Default Response") and drops the
 * component schemas no operation reaches, such as input twins of output-only schemas.
 */
function tidyDocument(doc: OpenApiDocument): OpenApiDocument {
  for (const operations of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (response.description === 'Default Response') response.description = statusTexts[status] ?? 'Response';
      }
    }
  }
  for (const [path, operations] of Object.entries(doc.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const problem = response.content?.['application/problem+json'];
        if (problem) {
          const example = problemExample(status, response.description ?? '', path);
          problem.examples = { [example.summary]: example };
        }
        const json = response.content?.['application/json'];
        const accepted = status === '202' && json ? acceptedExample(doc, json.schema?.$ref, operation.operationId) : undefined;
        if (json && accepted) json.examples = { payment_unknown: accepted };
      }
    }
  }
  const schemas = doc.components?.schemas;
  if (schemas) {
    const reached = new Set<string>();
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (!node || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') {
          const name = value.replace('#/components/schemas/', '');
          if (!reached.has(name)) {
            reached.add(name);
            visit(schemas[name]);
          }
        } else visit(value);
      }
    };
    visit(doc.paths);
    for (const name of Object.keys(schemas)) if (!reached.has(name)) delete schemas[name];
  }
  return doc;
}

export default fp(
  async function openapiPlugin(app: FastifyInstance, opts: { version: string; servers?: { url: string; description?: string }[] }) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'billing-service', version: opts.version, description: apiDescription, license: { name: 'Proprietary: not for use outside the platform', identifier: 'LicenseRef-Proprietary' } },
        servers: opts.servers ?? defaultServers,
        components: {
          securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key: bsk_ followed by 43 characters' } },
        },
        security: [{ bearerAuth: [] }],
        tags: [
          { name: 'Catalog', description: 'Plans, prices, billing cycles' },
          { name: 'Accounts', description: 'Trial accounts, KYC, entitlements' },
          { name: 'Trial whitelist', description: 'Numbers a trial may call and text' },
          { name: 'Upgrade', description: 'From trial to a paid plan: quote, pay, activate' },
          { name: 'Payments', description: 'Payments and offline confirmation' },
          { name: 'Subscriptions', description: 'The paid plan and its periods' },
          { name: 'Invoices', description: 'Invoices and their PDFs' },
          { name: 'Credits', description: 'Prepaid credits and their ledger' },
          { name: 'Usage', description: 'Per-call authorization and rating (the hot path)' },
          { name: 'ExoPhones', description: 'Production phone numbers' },
          { name: 'Webhooks', description: 'Outbound events, signed per Standard Webhooks, and the event log' },
          { name: 'Test clocks', description: 'Move time for test accounts (TEST_CLOCKS_ENABLED only)' },
          { name: 'API keys', description: 'Make, list and revoke API keys (ops); a new key\'s secret is shown once' },
          { name: 'Operations', description: 'Health and readiness' },
        ],
      },
      transform: jsonSchemaTransform,
      transformObject: (input) => ({ ...tidyDocument(jsonSchemaTransformObject(input) as OpenApiDocument), webhooks: tidyWebhooks(webhooksDocument() as Record<string, Record<string, Operation>>) }),
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  },
  { name: 'openapi' },
);
