// The HTTP baseline: a bare Fastify route answering a small constant JSON.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ allowed: true, reason: null }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
