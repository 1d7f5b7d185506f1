import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../lib/problem.js';
import type { TestClocksService } from './service.js';

/** An instant as ISO 8601 with its offset (`2027-02-26T10:00:00Z`). */
const isoInstant = z.iso.datetime({ offset: true });

const testClockSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    frozenTime: z.date(),
    status: z.enum(['ready', 'advancing']).meta({ description: '`advancing` while due renewals, cancellations or retries are being processed' }),
    pendingWork: z.number().int(),
  })
  .meta({
    id: 'TestClock',
    examples: [{ id: 'clk_01kb2m3n4p5q6r7s8t9v0w1x2y', name: 'renewal demo', frozenTime: '2026-11-26T10:00:00.000Z', status: 'ready', pendingWork: 0 }],
  });

const idParams = z.object({ testClockId: z.string().regex(/^clk_[0-9a-z]{26}$/, 'not a test clock id') });
const disabled = { 404: 'Test clocks are off (`test_clocks_disabled`), or no such clock (`test_clock_not_found`)' };

export const testClockRoutes: FastifyPluginAsyncZod<{ testClocks: TestClocksService }> = async (app, { testClocks }) => {
  app.post(
    '/v1/test-clocks',
    {
      config: { scope: 'ops' },
      schema: {
        tags: ['Test clocks'],
        operationId: 'createTestClock',
        summary: 'Create a test clock (TEST_CLOCKS_ENABLED only)',
        description: 'Accounts created with its id live on its frozen time; advancing it makes renewals, cancellations and dunning fall due.',
        body: z
          .object({ name: z.string().trim().min(1).max(120), frozenTime: isoInstant })
          .meta({ id: 'CreateTestClock', examples: [{ name: 'renewal demo', frozenTime: '2026-11-26T10:00:00Z' }] }),
        response: { 201: testClockSchema, ...errorResponses(disabled) },
      },
    },
    async (request, reply) => reply.status(201).send(await testClocks.create({ name: request.body.name, frozenTime: new Date(request.body.frozenTime) })),
  );

  app.get(
    '/v1/test-clocks/:testClockId',
    {
      config: { scope: 'ops' },
      schema: {
        tags: ['Test clocks'],
        operationId: 'getTestClock',
        summary: 'Get a test clock and whether its due work is done',
        params: idParams,
        response: { 200: testClockSchema, ...errorResponses(disabled) },
      },
    },
    async (request) => testClocks.get(request.params.testClockId),
  );

  app.post(
    '/v1/test-clocks/:testClockId/advance',
    {
      config: { scope: 'ops', audit: 'test_clock.advance' },
      schema: {
        tags: ['Test clocks'],
        operationId: 'advanceTestClock',
        summary: 'Move a test clock forward and wait for the work that falls due',
        description: 'Answers when the workers have done everything due (`ready`), or after 30 s with `advancing`.',
        params: idParams,
        body: z.object({ frozenTime: isoInstant }).meta({ id: 'AdvanceTestClock', examples: [{ frozenTime: '2027-02-26T10:00:00Z' }] }),
        response: { 200: testClockSchema, ...errorResponses({ ...disabled, 409: 'The time is before the clock\'s (`test_clock_backwards`)' }) },
      },
    },
    async (request) => testClocks.advance(request.params.testClockId, new Date(request.body.frozenTime)),
  );
};
