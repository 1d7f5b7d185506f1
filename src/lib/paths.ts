import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root (package.json, migrations/): the nearest directory above this module
 * that holds a package.json. Found rather than assumed, because the module sits at
 * src/lib/ when run from sources and in a chunk under dist/ when bundled.
 */
export const projectRoot: string = (() => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
})();
