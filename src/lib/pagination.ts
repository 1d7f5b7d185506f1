import { z } from 'zod';
import { AppError } from './errors.js';

export const paginationQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ description: 'Page size, 1 to 200' }),
  cursor: z.string().max(200).optional().meta({ description: 'The nextCursor of the previous page' }),
});

export const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[\w+.-]{1,200}$/.test(key) || encodeCursor(key) !== cursor) throw new AppError('validation_failed', 'cursor is not one this API returned', { errors: [{ path: 'querystring.cursor', message: 'invalid cursor' }] });
  return key;
}

/** Fetch limit + 1 rows; the extra one tells whether another page exists. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => string): { data: T[]; nextCursor: string | null } {
  const data = rows.slice(0, limit);
  return { data, nextCursor: rows.length > limit ? encodeCursor(keyOf(data[data.length - 1]!)) : null };
}
