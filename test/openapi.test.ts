import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
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

const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (ajv: Ajv2020) => void;
const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Every example of the document with the JSON pointer of the schema it must match: schema
 * `examples`/`example` at any depth (components, parameters, bodies, responses, headers,
 * webhooks), and the `example`/`examples` of parameters, headers and media types.
 */
function examplesOf(doc: any): { where: string; schema: string; value: unknown }[] {
  const out: { where: string; schema: string; value: unknown }[] = [];
  const maps = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
  const lists = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
  const singles = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties'];
  const walkSchema = (s: any, ptr: string): void => {
    if (!s || typeof s !== 'object') return;
    if (Array.isArray(s.examples)) s.examples.forEach((value: unknown, i: number) => out.push({ where: `${ptr}/examples/${i}`, schema: ptr, value }));
    if (s.example !== undefined) out.push({ where: `${ptr}/example`, schema: ptr, value: s.example });
    for (const k of maps) for (const [n, v] of Object.entries(s[k] ?? {})) walkSchema(v, `${ptr}/${k}/${esc(n)}`);
    for (const k of lists) if (Array.isArray(s[k])) s[k].forEach((v: unknown, i: number) => walkSchema(v, `${ptr}/${k}/${i}`));
    for (const k of singles) if (s[k] && typeof s[k] === 'object') walkSchema(s[k], `${ptr}/${k}`);
  };
  // A parameter, a header or a media type: a schema beside an `example` or a map of Example Objects.
  const walkHolder = (h: any, ptr: string): void => {
    if (!h?.schema) return;
    walkSchema(h.schema, `${ptr}/schema`);
    if (h.example !== undefined) out.push({ where: `${ptr}/example`, schema: `${ptr}/schema`, value: h.example });
    for (const [n, e] of Object.entries<any>(h.examples ?? {})) out.push({ where: `${ptr}/examples/${esc(n)}`, schema: `${ptr}/schema`, value: e?.value });
  };
  const walkOperation = (op: any, ptr: string): void => {
    (op.parameters ?? []).forEach((p: unknown, i: number) => walkHolder(p, `${ptr}/parameters/${i}`));
    for (const [mt, m] of Object.entries<any>(op.requestBody?.content ?? {})) walkHolder(m, `${ptr}/requestBody/content/${esc(mt)}`);
    for (const [status, r] of Object.entries<any>(op.responses ?? {})) {
      for (const [mt, m] of Object.entries<any>(r.content ?? {})) walkHolder(m, `${ptr}/responses/${status}/content/${esc(mt)}`);
      for (const [h, header] of Object.entries<any>(r.headers ?? {})) walkHolder(header, `${ptr}/responses/${status}/headers/${esc(h)}`);
    }
  };
  for (const section of ['paths', 'webhooks']) {
    for (const [path, item] of Object.entries<any>(doc[section] ?? {})) {
      (item.parameters ?? []).forEach((p: unknown, i: number) => walkHolder(p, `#/${section}/${esc(path)}/parameters/${i}`));
      for (const method of ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']) if (item[method]) walkOperation(item[method], `#/${section}/${esc(path)}/${method}`);
    }
  }
  for (const [name, s] of Object.entries<any>(doc.components?.schemas ?? {})) walkSchema(s, `#/components/schemas/${esc(name)}`);
  for (const [name, p] of Object.entries<any>(doc.components?.parameters ?? {})) walkHolder(p, `#/components/parameters/${esc(name)}`);
  return out;
}

/** The examples that do not validate against their schema (JSON Schema 2020-12, as OpenAPI 3.1). */
function invalidExamples(doc: any): string[] {
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
  addFormats(ajv);
  ajv.addFormat('binary', true); // a file body: any bytes
  const base = 'https://billing-service.invalid/openapi.json';
  ajv.addSchema({ ...structuredClone(doc), $id: base });
  const failures: string[] = [];
  for (const example of examplesOf(doc)) {
    const validate = ajv.getSchema(`${base}${example.schema}`)!;
    if (!validate(example.value)) failures.push(`${example.where}: ${ajv.errorsText(validate.errors)}`);
  }
  return failures;
}

t.test('every example in the document validates against its schema', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const examples = examplesOf(doc);
  const where = (part: string) => examples.filter((e) => e.where.startsWith(part)).length;
  t.ok(where('#/components/schemas/') > 50, 'component schema examples are checked');
  t.ok(examples.some((e) => e.where.includes('/content/application~1problem+json/examples/')), 'media-type examples are checked');
  t.ok(examples.some((e) => /\/parameters\/\d+\/(example|schema\/examples)/.test(e.where)), 'parameter examples are checked');
  t.ok(where('#/webhooks/') > 0, 'webhook examples are checked');
  t.same(invalidExamples(doc), [], 'no example contradicts its schema');
});

t.test('the example check fails on an example that does not match its schema', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  doc.components.schemas.Problem.examples = [{ type: 'x', status: 'not a number' }];
  const webhook = Object.values<any>(doc.webhooks)[0].post;
  webhook.parameters[0].example = 42;
  const failures = invalidExamples(doc);
  t.ok(failures.some((f) => f.startsWith('#/components/schemas/Problem/examples/0')), 'a component schema example');
  t.ok(failures.some((f) => f.startsWith('#/webhooks/') && f.includes('/parameters/0/example')), 'a webhook header example');
});

t.test('each error status shows an example of its own status, and 202 shows a payment not yet known', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  t.ok(doc.servers?.length, 'servers are named');
  for (const [path, operations] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(operations)) {
      for (const [status, response] of Object.entries<any>(op.responses)) {
        const problem = response.content?.['application/problem+json'];
        if (!problem) continue;
        const values = Object.values<any>(problem.examples ?? {}).map((e) => e.value);
        t.ok(values.length && values.every((v) => String(v.status) === status), `${method.toUpperCase()} ${path} ${status} has a ${status} example`);
      }
    }
  }
  const upgrade = doc.paths['/v1/accounts/{accountId}/upgrade'].post.responses['202'].content['application/json'];
  t.equal(Object.values<any>(upgrade.examples)[0].value.status, 'payment_unknown');
  t.equal(doc.paths['/v1/accounts/{accountId}'].get.responses['404'].content['application/problem+json'].examples.account_not_found.value.code, 'account_not_found');
});

t.test('webhooks are signed, not bearer-authenticated, and declare their Standard Webhooks headers', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  for (const [type, item] of Object.entries<any>(doc.webhooks)) {
    t.same(item.post.security, [], `${type} has no bearer security`);
    const headers = item.post.parameters.filter((p: any) => p.in === 'header' && p.required).map((p: any) => p.name);
    t.same(headers, ['webhook-id', 'webhook-timestamp', 'webhook-signature'], `${type} declares the webhook headers`);
  }
});
