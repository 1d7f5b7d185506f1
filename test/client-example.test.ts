import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import t from 'tap';
import ts from 'typescript';

t.test('the README\'s typed-client example compiles against the generated types', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /<!-- typed-client-example -->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  t.ok(block, 'the README has the example');
  const dir = new URL('./.generated/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = new URL('example.ts', dir).pathname;
  writeFileSync(file, block!.replace("from './openapi/schema'", "from '../../openapi/schema.js'"));
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: ['node'],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  t.same(diagnostics, [], 'no type errors');

  // And it really is checked: a wrong field is an error.
  writeFileSync(file, block!.replace("from './openapi/schema'", "from '../../openapi/schema.js'").replace("planId: 'plan_starter_v1'", "plan: 'plan_starter_v1'"));
  const broken = ts.createProgram([file], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, types: ['node'] });
  t.ok(ts.getPreEmitDiagnostics(broken).length > 0, 'a wrong field fails to compile');
});
