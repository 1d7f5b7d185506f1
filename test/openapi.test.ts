import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import t from 'tap';
import { setup } from './helper.js';

t.test('the committed document is valid OpenAPI 3.1 and matches the routes', async (t) => {
  const ctx = await setup(t);
  await ctx.app.ready();
  const generated = ctx.app.swagger() as any;
  const committed = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  t.same(committed, generated, 'no drift: run `npm run openapi` after changing routes');
  t.equal(committed.openapi, '3.1.0');
  const validated = await SwaggerParser.validate(structuredClone(committed));
  t.ok(validated.paths, 'swagger-parser validates it');
});

t.test('every operation has a tag, summary, operationId, examples and its error statuses', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const schemas = doc.components.schemas;
  const resolve = (s: any): any => (s?.$ref ? schemas[s.$ref.replace('#/components/schemas/', '')] : s);
  // An example on the schema, or on the items of a list schema's `data`.
  const hasExample = (s: any): boolean => {
    const r = resolve(s);
    if (!r) return false;
    if (r.examples?.length || r.example !== undefined) return true;
    if (r.properties?.data?.items) return hasExample(r.properties.data.items);
    return false;
  };
  const ids = new Set<string>();
  for (const [path, operations] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(operations)) {
      const name = `${method.toUpperCase()} ${path}`;
      t.ok(op.tags?.length, `${name} has a tag`);
      t.ok(op.summary, `${name} has a summary`);
      t.ok(op.operationId && !ids.has(op.operationId), `${name} has a unique operationId`);
      ids.add(op.operationId);
      const body = op.requestBody?.content?.['application/json']?.schema;
      if (body) t.ok(hasExample(body), `${name} request body has an example`);
      for (const [status, response] of Object.entries<any>(op.responses)) {
        const json = response.content?.['application/json']?.schema;
        if (status.startsWith('2') && json && path.startsWith('/v1')) t.ok(hasExample(json), `${name} ${status} has an example`);
      }
      if (path.startsWith('/v1')) {
        for (const status of ['400', '401', '403', '500']) {
          t.equal(op.responses[status]?.content?.['application/problem+json']?.schema?.$ref, '#/components/schemas/Problem', `${name} documents ${status}`);
        }
        if (path.includes('{accountId}')) t.ok(op.responses['404'], `${name} documents 404`);
      }
    }
  }
});

t.test('/docs serves the interactive reference', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.app.inject({ method: 'GET', url: '/docs/' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/html/);
  const json = await ctx.app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(json.json().openapi, '3.1.0');
});

t.test('the webhooks section documents every event of the catalogue, including the issue\'s list', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const listed = [
    'account.upgraded', 'account.upgrade_pending_payment', 'payment.succeeded', 'payment.failed', 'invoice.created', 'invoice.paid',
    'subscription.plan_change_scheduled', 'subscription.plan_changed', 'subscription.billing_cycle_changed', 'subscription.cancellation_scheduled',
    'subscription.resumed', 'subscription.renewed', 'subscription.past_due', 'subscription.cancelled', 'account.limited', 'credits.low',
    'credits.recharged', 'credits.recharge_failed', 'kyc.status_changed',
  ];
  for (const type of listed) {
    const body = doc.webhooks[type]?.post?.requestBody?.content?.['application/json']?.schema;
    t.equal(body?.properties?.type?.const, type, `${type} documented`);
    t.ok(body?.properties?.data?.properties, `${type} has a data schema`);
  }
});
