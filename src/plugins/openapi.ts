import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { webhooksDocument } from '../modules/events/catalogue.js';

export const apiDescription = `Headless billing and subscription engine of a cloud-telephony platform: plans and
entitlements, trial accounts, KYC, upgrades, invoices, prepaid credits.

**Authentication**: \`Authorization: Bearer <api key>\`. Keys carry scopes (\`read\`, \`write\`, \`kyc\`, \`ops\`;
\`ops\` implies the others, \`write\` implies \`read\`) and may be bound to one account, which then cannot see
any other: another account's id answers 404.

**Errors**: RFC 9457 \`application/problem+json\` with a stable \`code\` and the \`requestId\`.

**Money**: integer minor units (paise, cents) with an ISO currency. **Lists**: cursor pagination
(\`limit\`, \`cursor\` = the previous page's \`nextCursor\`).`;

type OpenApiDocument = {
  paths?: Record<string, Record<string, { responses?: Record<string, { description?: string }> }>>;
  components?: { schemas?: Record<string, unknown> };
};

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
  async function openapiPlugin(app: FastifyInstance, opts: { version: string }) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'billing-service', version: opts.version, description: apiDescription },
        servers: [],
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
      transformObject: (input) => ({ ...tidyDocument(jsonSchemaTransformObject(input) as OpenApiDocument), webhooks: webhooksDocument() }),
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  },
  { name: 'openapi' },
);
