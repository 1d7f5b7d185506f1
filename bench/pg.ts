import pg from 'pg';

/** One statement on a connection of its own, for the bench's setup and checks. */
export async function query(url: string, text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}
