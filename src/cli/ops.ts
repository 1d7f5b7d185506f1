import { runCli } from './cli.js';

/** `npm run ops`: the operator's commands, with clear exit codes and --json for scripts (see cli.ts). */
runCli(process.argv.slice(2), { program: 'npm run ops --' }).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`ops failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
