/**
 * Checks on text a client sent, before anything else walks it: Postgres `text` and `jsonb`
 * refuse NUL and lone UTF-16 surrogates (JSON can carry both as `\u0000`, `\ud800`), and a
 * recursive walk over a deeply nested body overflows the stack. One iterative walk does all:
 * the nesting depth is checked as it goes, so a hostile body costs one pass and no recursion.
 */

/** More levels of nested objects and arrays than this is refused: our bodies are shallow. */
export const MAX_DEPTH = 32;

export type TextProblem =
  | { kind: 'too_deep'; path: string; maxDepth: number }
  | { kind: 'nul' | 'lone_surrogate'; path: string };

// With the u flag a well-formed surrogate pair is one code point, so \p{Cs} matches only lone halves.
const badText = /[\u0000\p{Cs}]/u;

interface Frame {
  value: unknown;
  depth: number;
  key: string | number | null;
  parent: Frame | null;
}

/** Where a frame sits, as `reason` or `items.0.name`; keys are cut short and reduced to safe characters. */
function pathOf(frame: Frame | null, extra?: string): string {
  const parts: string[] = extra === undefined ? [] : [extra];
  for (let f = frame; f && f.key !== null; f = f.parent) parts.unshift(String(f.key));
  return parts.map((p) => p.replace(/[^\w-]/g, '?').slice(0, 40)).join('.');
}

function textProblem(text: string): 'nul' | 'lone_surrogate' | null {
  if (!badText.test(text)) return null;
  return text.includes('\u0000') ? 'nul' : 'lone_surrogate';
}

/**
 * The first problem found in a parsed JSON value (or a querystring or params object): a
 * string or object key holding NUL or a lone surrogate, or containers nested deeper than
 * `maxDepth`. Null when there is none.
 */
export function findTextProblem(root: unknown, maxDepth: number = MAX_DEPTH): TextProblem | null {
  const stack: Frame[] = [{ value: root, depth: 0, key: null, parent: null }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { value } = frame;
    if (typeof value === 'string') {
      const kind = textProblem(value);
      if (kind) return { kind, path: pathOf(frame) };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const depth = frame.depth + 1;
    if (depth > maxDepth) return { kind: 'too_deep', path: pathOf(frame), maxDepth };
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth, key: i, parent: frame });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const kind = textProblem(key);
      if (kind) return { kind, path: pathOf(frame, key) };
      stack.push({ value: (value as Record<string, unknown>)[key], depth, key, parent: frame });
    }
  }
  return null;
}

/** The problem in words, for a 400's detail: `where` is body, querystring or params. */
export function describeTextProblem(where: string, problem: TextProblem): string {
  const at = problem.path ? ` (at ${where}.${problem.path})` : '';
  switch (problem.kind) {
    case 'too_deep':
      return `The ${where} is nested more than ${problem.maxDepth} levels deep`;
    case 'nul':
      return `Text in the ${where} contains a NUL character${at}`;
    case 'lone_surrogate':
      return `Text in the ${where} contains a lone UTF-16 surrogate, which is not valid text${at}`;
  }
}
