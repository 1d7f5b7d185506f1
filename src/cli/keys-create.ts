import { runCli } from './cli.js';

/** `npm run keys:create`: makes an API key and prints it once; the same as `npm run ops -- keys:create`. */
runCli(process.argv.slice(2), { program: 'npm run keys:create --', only: 'keys:create' }).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`keys:create failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
