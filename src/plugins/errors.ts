import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, errorCodes, problemType, type ErrorCode, type FieldError } from '../lib/errors.js';
import { isConnectionError } from '../db/errors.js';
import { parseBearer } from '../modules/auth/domain.js';
import { errorResponses, type Problem } from '../lib/problem.js';
import { describeTextProblem, findTextProblem } from '../lib/text-checks.js';

/** What a 503 asks the caller to wait: a failover or a reconnect takes about this long. */
const RETRY_AFTER_SECONDS = 2;

/** The longest URL (path and query) served: RFC 9110 asks for at least 8000 octets; longer is 414. */
export const MAX_URL_LENGTH = 8192;

/** RFC 6750: a 401 names the scheme and realm, and `invalid_token` when a key was sent but refused. */
function wwwAuthenticate(request: FastifyRequest): string {
  const realm = 'Bearer realm="billing-service"';
  // RFC 6750 3.1: invalid_token only when a bearer token was sent (not for no header, or Basic).
  return parseBearer(request.headers.authorization) === null ? realm : `${realm}, error="invalid_token", error_description="The API key is not valid"`;
}

/** The routes' patterns, to tell a wrong method on a path that exists (405, with `Allow`) from a path that does not (404). */
class RouteTable {
  private readonly routes: { segments: string[]; methods: Set<string> }[] = [];

  add(url: string, methods: string[]): void {
    const segments = RouteTable.split(url);
    const same = this.routes.find((r) => r.segments.join('/') === segments.join('/'));
    if (same) methods.forEach((m) => same.methods.add(m));
    else this.routes.push({ segments, methods: new Set(methods) });
  }

  /** The methods routed on this path. */
  methodsOf(path: string): Set<string> {
    const given = RouteTable.split(path);
    const methods = new Set<string>();
    for (const route of this.routes) {
      let matches = true;
      for (let i = 0; i < route.segments.length; i++) {
        const pattern = route.segments[i]!;
        if (pattern === '*') break;
        const segment = given[i];
        if (segment === undefined || (!pattern.includes(':') && pattern !== segment) || (pattern.includes(':') && segment === '')) {
          matches = false;
          break;
        }
      }
      if (!matches) continue;
      const wildcard = route.segments.at(-1) === '*';
      if (!wildcard && given.length !== route.segments.length) continue;
      route.methods.forEach((m) => methods.add(m));
    }
    return methods;
  }

  private static split(url: string): string[] {
    const path = url.length > 1 && url.endsWith('/') ? url.slice(0, -1) : url;
    return path.split('/');
  }
}

/** The router's limit on one path parameter (fastify's default `maxParamLength`); longer is 414. */
const DEFAULT_MAX_PARAM_LENGTH = 100;

/** Fastify's own error codes mapped to ours; anything else under 500 is a malformed request. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_request',
  FST_ERR_RATE_LIMITED: 'rate_limited',
  FST_ERR_BAD_URL: 'malformed_request',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/** Plain words for what fastify's own messages say with the whole URL in them. */
const fastifyDetails: Record<string, string> = {
  FST_ERR_BAD_URL: 'The path is not valid percent-encoded UTF-8',
  FST_ERR_MAX_PARAM_LENGTH: `A path parameter is longer than the router takes (${DEFAULT_MAX_PARAM_LENGTH} characters)`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'This API takes request bodies as application/json (UTF-8): send Content-Type: application/json',
};

/** A fastify status without a code of its own gets the code of that status. */
const statusCodes: Partial<Record<number, ErrorCode>> = {
  404: 'route_not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
};

/** The raw querystring decodes as percent-encoded UTF-8 (the parser keeps a value it cannot decode as it is). */
function queryDecodes(url: string): boolean {
  const start = url.indexOf('?');
  if (start < 0 || !url.includes('%', start)) return true;
  try {
    decodeURIComponent(url.slice(start + 1));
    return true;
  } catch {
    return false;
  }
}

/** SQLSTATEs that mean the input, not the server, was at fault: a backstop for validation. */
const badInputSqlStates = new Set(['22021', '22P05', '22001', '22003']);

export function toProblem(err: unknown, request: FastifyRequest): Problem {
  const base = { requestId: String(request.id), instance: request.url.split('?')[0] };
  if (err instanceof AppError) {
    return { type: problemType(err.code), title: err.title, status: err.status, detail: err.message, code: err.code, ...base, ...err.extra };
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const context = (err as { validationContext?: string }).validationContext ?? 'body';
    // A route that requires an Idempotency-Key, called without one: its own code, not a schema error.
    if (context === 'headers' && err.validation.length === 1 && err.validation[0]!.instancePath === '/idempotency-key' && request.headers['idempotency-key'] === undefined) {
      return toProblem(new AppError('idempotency_key_required'), request);
    }
    const errors: FieldError[] = err.validation.map((v) => ({
      path: [context, ...v.instancePath.split('/').filter(Boolean)].join('.'),
      message: v.message ?? 'invalid',
    }));
    const code: ErrorCode = 'validation_failed';
    return {
      type: problemType(code),
      title: errorCodes[code].title,
      status: 400,
      detail: errors.map((e) => `${e.path}: ${e.message}`).join('; '),
      code,
      errors,
      ...base,
    };
  }
  const sqlState = (err as { cause?: { code?: string }; code?: string }).cause?.code ?? (err as { code?: string }).code;
  if (sqlState && badInputSqlStates.has(sqlState)) {
    request.log.warn({ err }, 'input refused by the database');
    const code: ErrorCode = 'malformed_request';
    return { type: problemType(code), title: errorCodes[code].title, status: 400, detail: 'A value is not acceptable', code, ...base };
  }
  if (isConnectionError(err)) {
    request.log.warn({ err }, 'database connection lost during the request');
    const code: ErrorCode = 'database_unavailable';
    return { type: problemType(code), title: errorCodes[code].title, status: 503, detail: 'The database connection was lost; retry the request', code, ...base };
  }
  const fastifyErr = err as Partial<FastifyError>;
  const status = fastifyErr.statusCode ?? 500;
  if (status < 500) {
    const known = fastifyCodes[fastifyErr.code ?? ''] ?? statusCodes[status];
    const code = known ?? 'malformed_request';
    const detail = fastifyDetails[fastifyErr.code ?? ''] ?? fastifyErr.message;
    // A known code always comes with its own status.
    return { type: problemType(code), title: errorCodes[code].title, status: known ? errorCodes[code].status : status, detail, code, ...base };
  }
  // Never show internals: the log has them under the request id.
  const code: ErrorCode = status === 503 ? 'service_unavailable' : 'internal_error';
  return { type: problemType(code), title: errorCodes[code].title, status: status === 503 ? 503 : 500, code, ...base };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.status(problem.status).type('application/problem+json').send(problem);
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before any route or hook runs (a path
 * that is not percent-encoded UTF-8, such as `%ED%A0%80` or `%E0%A4`) answers problem+json
 * too, instead of fastify's own plain JSON.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const problem = toProblem(err, request);
  request.log.info({ code: problem.code, status: problem.status }, 'request refused');
  sendProblem(reply, problem);
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request
 * (a header block over the limit, a malformed request line or framing) answers problem+json
 * too. There is no request to log under, so the answer carries an id of its own.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // Node counts the request line against the header limit: a request line alone over it is a URL too long.
  const raw = (err as { rawPacket?: Buffer }).rawPacket;
  const lineEnd = raw ? raw.indexOf('\r\n') : -1;
  const urlTooLong = err.code === 'HPE_HEADER_OVERFLOW' && raw !== undefined && (lineEnd < 0 || lineEnd > MAX_URL_LENGTH);
  const [status, reason, detail] =
    urlTooLong
      ? [414, 'URI Too Long', `The URL is longer than ${MAX_URL_LENGTH} characters`]
      : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'The request was not received in time']
        : [400, 'Bad Request', 'The request is not valid HTTP'];
  const code: ErrorCode = status === 400 ? 'malformed_request' : status === 414 ? 'uri_too_long' : status === 431 ? 'headers_too_large' : 'request_timeout';
  const body = JSON.stringify({ type: problemType(code), title: errorCodes[code].title, status, detail, code, requestId: randomUUID() });
  this.log.info({ code, status, parserError: err.code }, 'request refused by the HTTP parser');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    // JSON bodies must be UTF-8: Node would replace invalid bytes with U+FFFD and the damaged
    // text would be stored (and printed on an invoice). Otherwise fastify's own parser, which
    // refuses __proto__ and constructor.prototype keys.
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      const bytes = body as Buffer;
      // No body at all, only its content type (clients that always send the header, on a
      // DELETE or a POST that takes none): no body. A route that needs one says so (400).
      if (bytes.length === 0) return done(null, undefined);
      if (!isUtf8(bytes)) return done(new AppError('malformed_request', 'The body is not valid UTF-8'), undefined);
      parseJson(request, bytes.toString('utf8'), done);
    });

    // Declared once: any route with a body can answer 413 and 415; any documented route outside
    // /v1 (health, readiness) a malformed querystring (400) and a URL too long (414).
    const routes = new RouteTable();
    app.addHook('onRoute', (route) => {
      routes.add(route.url, [route.method].flat());
      if (!route.schema || route.schema.hide) return;
      const response = (route.schema.response ?? {}) as Record<string, unknown>;
      if (route.url.startsWith('/v1') && route.schema.body) {
        route.schema = { ...route.schema, response: { ...errorResponses({ 413: undefined, 415: undefined }), ...response } };
      } else if (!route.url.startsWith('/v1') && route.schema.tags) {
        const { 400: malformed, 414: tooLong } = errorResponses();
        route.schema = { ...route.schema, response: { 400: { ...malformed, description: 'The querystring is not valid percent-encoded UTF-8 (`malformed_request`)' }, 414: tooLong, ...response } };
      }
    });

    // A URL over the limit is refused before anything reads it (Node's own limit, the header
    // block, is twice as long and answers 414 or 431 in clientErrorHandler).
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.url.length > MAX_URL_LENGTH) return done(new AppError('uri_too_long', `The URL is longer than ${MAX_URL_LENGTH} characters`));
      done();
    });

    // Postgres refuses NUL and lone surrogates in text, and a deep body would overflow any
    // recursive walk (validation, fingerprints): refuse both here, as bad input, first of all.
    app.addHook('preValidation', (request, _reply, done) => {
      if (!queryDecodes(request.url)) return done(new AppError('malformed_request', 'The querystring is not valid percent-encoded UTF-8'));
      for (const [where, value] of [['body', request.body], ['querystring', request.query], ['params', request.params]] as const) {
        const problem = findTextProblem(value);
        if (problem) return done(new AppError('malformed_request', describeTextProblem(where, problem)));
      }
      done();
    });

    app.setErrorHandler((err, request, reply) => {
      const problem = toProblem(err, request);
      // Nothing was half-written (the transaction rolled back): the same request may simply be sent again.
      if (problem.status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      // Another charge of the same invoice is in flight: its answer comes within seconds.
      if (problem.code === 'invoice_payment_in_progress') reply.header('retry-after', '2');
      if (problem.status === 401) reply.header('www-authenticate', wwwAuthenticate(request));
      if (problem.status >= 500 && problem.status !== 503) request.log.error({ err }, 'request failed');
      else request.log.info({ code: problem.code, status: problem.status }, 'request refused');
      return sendProblem(reply, problem);
    });

    // Not routed: a path routed for other methods is 405 with `Allow`, anything else 404.
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0]!;
      const methods = routes.methodsOf(path);
      if (methods.size && !methods.has(request.method)) {
        const allow = [...methods].sort().join(', ');
        reply.header('allow', allow);
        return sendProblem(reply, toProblem(new AppError('method_not_allowed', `${request.method} is not allowed on ${path}; allowed: ${allow}`), request));
      }
      return sendProblem(reply, toProblem(new AppError('route_not_found', `No route ${request.method} ${path}`), request));
    });
  },
  { name: 'errors' },
);
