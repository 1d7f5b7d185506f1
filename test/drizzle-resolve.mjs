// Loaded before every test file (.taprc): resolves drizzle-orm's own relative imports
// directly. Node 22 and 24 read a package's package.json again for every module they resolve
// inside it (nodejs/node#58126), and drizzle-orm's is 179 KB: about 1 s of every test file's
// start went there. drizzle-orm is an ES module package whose files import each other by
// relative paths with extensions, so joining the URL is the whole resolution. The service
// itself bundles drizzle-orm into dist/ (scripts/build-if-stale.mjs) and needs none of this.
import * as module from 'node:module';

const inside = '/node_modules/drizzle-orm/';
module.registerHooks?.({
  resolve(specifier, context, nextResolve) {
    if (context.parentURL?.includes(inside) && /^\.\.?\//.test(specifier)) {
      return { url: new URL(specifier, context.parentURL).href, format: specifier.endsWith('.cjs') ? 'commonjs' : 'module', shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
});
