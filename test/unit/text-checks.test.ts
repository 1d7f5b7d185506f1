import t from 'tap';
import { describeTextProblem, findTextProblem, MAX_DEPTH } from '../../src/lib/text-checks.js';

const nested = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
};

t.test('plain values, well-formed text and surrogate pairs pass', async (t) => {
  for (const value of [null, undefined, 1, true, '', 'plain', 'emoji \ud83d\ude00 pair', { a: ['b', { c: 'd' }] }, [], {}]) {
    t.equal(findTextProblem(value), null, JSON.stringify(value));
  }
  t.equal(findTextProblem(nested(MAX_DEPTH)), null, `${MAX_DEPTH} levels are allowed`);
});

t.test('nesting deeper than the limit is refused, without recursion', async (t) => {
  t.match(findTextProblem(nested(MAX_DEPTH + 1)), { kind: 'too_deep', maxDepth: MAX_DEPTH });
  t.match(findTextProblem(nested(3), 2), { kind: 'too_deep', maxDepth: 2 });
  // As JSON.parse makes them: 20,000 levels of objects, and of arrays.
  const deepObject = JSON.parse('{"a":'.repeat(20000) + '1' + '}'.repeat(20000));
  const deepArray = JSON.parse('['.repeat(20000) + '1' + ']'.repeat(20000));
  t.equal(findTextProblem(deepObject)?.kind, 'too_deep');
  t.equal(findTextProblem(deepArray)?.kind, 'too_deep');
  // A deep value sitting beside a clean one is still found.
  t.equal(findTextProblem({ ok: 'x', list: [1, 2, deepArray] })?.kind, 'too_deep');
});

t.test('NUL and lone surrogates in strings and keys are found, with where they are', async (t) => {
  t.same(findTextProblem('a\u0000b'), { kind: 'nul', path: '' });
  t.same(findTextProblem({ reason: 'abc\ud800def' }), { kind: 'lone_surrogate', path: 'reason' });
  t.same(findTextProblem({ reason: 'low \udc00 alone' }), { kind: 'lone_surrogate', path: 'reason' });
  t.same(findTextProblem({ reason: 'reversed \ude00\ud83d' }), { kind: 'lone_surrogate', path: 'reason' });
  t.same(findTextProblem({ items: [{ name: 'ok' }, { name: 'x\u0000' }] }), { kind: 'nul', path: 'items.1.name' });
  t.same(findTextProblem({ meta: { ['k\ud800']: 1 } }), { kind: 'lone_surrogate', path: 'meta.k?' }, 'a key, shown without its bad character');
  t.same(findTextProblem({ ['\u0000']: 'v' }), { kind: 'nul', path: '?' });
});

t.test('the description names where the problem is', async (t) => {
  t.equal(describeTextProblem('body', { kind: 'lone_surrogate', path: 'reason' }), 'Text in the body contains a lone UTF-16 surrogate, which is not valid text (at body.reason)');
  t.equal(describeTextProblem('querystring', { kind: 'nul', path: 'x' }), 'Text in the querystring contains a NUL character (at querystring.x)');
  t.equal(describeTextProblem('params', { kind: 'nul', path: '' }), 'Text in the params contains a NUL character');
  t.equal(describeTextProblem('body', { kind: 'too_deep', path: 'a.a', maxDepth: 32 }), 'The body is nested more than 32 levels deep');
});
