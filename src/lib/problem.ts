import { z } from 'zod';
import { problemType } from './errors.js';

export const problemSchema = z
  .object({
    type: z.string().meta({ description: 'URN naming the problem type: urn:billing-service:problem:<code>' }),
    title: z.string(),
    status: z.number().int().min(100).max(599),
    detail: z.string().optional(),
    code: z.string().meta({ description: 'Stable machine-readable error code' }),
    requestId: z.string().meta({ description: 'Echoes the x-request-id response header' }),
    instance: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .meta({ description: 'Per-field validation errors' }),
  })
  .catchall(z.unknown())
  .meta({
    id: 'Problem',
    description: 'RFC 9457 problem details',
    examples: [
      {
        type: problemType('kyc_not_approved'),
        title: 'KYC must be approved first',
        status: 409,
        detail: 'Account acc_01k9... has KYC status submitted',
        code: 'kyc_not_approved',
        requestId: 'req-1a2b3c',
      },
    ],
  });

export type Problem = z.infer<typeof problemSchema>;

const statusDescriptions: Record<number, string> = {
  400: 'The request is malformed or fails validation (`validation_failed`, `malformed_request`)',
  401: 'No valid API key (`unauthenticated`); the answer carries `WWW-Authenticate: Bearer realm="billing-service"`',
  402: 'The payment was declined (`payment_declined`)',
  403: 'The key lacks the scope, or is bound to one account (`insufficient_scope`, `account_bound_key`)',
  404: 'Not found, or not visible to this key',
  409: 'The request conflicts with the current state',
  413: 'Body too large (`payload_too_large`)',
  414: 'The URL is longer than 8192 characters (`uri_too_long`)',
  415: 'Unsupported content type (`unsupported_media_type`)',
  422: 'The request is well formed but cannot be processed',
  429: 'Over the rate limit of this API key, or too many failed authentications from this address (`rate_limited`); see the `Retry-After` and (for a key over its budget) `RateLimit-*` headers',
  500: 'Unexpected error; details are in the logs under the request id (`internal_error`)',
  503: 'A dependency did not answer: the database connection was lost or could not be made (`database_unavailable`), or another service (the payment gateway, Redis for the queue board) is away (`service_unavailable`). Retry after `Retry-After` seconds, with the same Idempotency-Key where the operation takes one',
};

export type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 409 | 413 | 414 | 415 | 422 | 429 | 500 | 503;

export const problemResponse = (status: ErrorStatus, description?: string) => ({
  description: description ?? statusDescriptions[status]!,
  content: { 'application/problem+json': { schema: problemSchema } },
});

/**
 * The error responses of a route, declared once: every /v1 route can answer 400, 401, 403,
 * 414, 429, 500 and 503; routes add what they can answer besides, with a description naming the codes.
 */
export function errorResponses(extra: Partial<Record<ErrorStatus, string | undefined>> = {}) {
  const statuses: ErrorStatus[] = [400, 401, 403, 414, 429, 500, 503];
  const out: Record<number, ReturnType<typeof problemResponse>> = {};
  for (const status of statuses) out[status] = problemResponse(status);
  for (const [status, description] of Object.entries(extra)) {
    out[Number(status)] = problemResponse(Number(status) as ErrorStatus, description);
  }
  return out;
}
