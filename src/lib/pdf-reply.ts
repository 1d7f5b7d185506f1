import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Sends a kept document: its bytes with a strong ETag (their SHA-256), or 304 when the
 * caller's If-None-Match names it. The bytes never change, so the tag never goes stale.
 */
export function replyWithPdf(request: FastifyRequest, reply: FastifyReply, doc: { pdf: Buffer; sha256: string; fileName: string }) {
  const etag = `"${doc.sha256}"`;
  reply.header('etag', etag).header('cache-control', 'private, max-age=0, must-revalidate');
  // Weak comparison, as RFC 9110 asks of If-None-Match; `*` matches any current document.
  const matches = request.headers['if-none-match']?.split(',').some((tag) => ['*', etag].includes(tag.trim().replace(/^W\//, '')));
  if (matches) return reply.status(304).send();
  // A Buffer: fastify sends it as is.
  return reply.type('application/pdf').header('content-disposition', `inline; filename="${doc.fileName}"`).send(doc.pdf);
}
