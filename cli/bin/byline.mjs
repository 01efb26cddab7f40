#!/usr/bin/env node
// The byline command: the compiled JavaScript in ../dist, run by plain node (no TypeScript loader).
// `npm ci` builds it (the root package's `prepare` script); after changing the sources, `npm run
// build` (or any vitest run, whose global setup builds first) brings it up to date.
let main;
try {
  ({ main } = await import('../dist/main.js'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('/dist/main.js')) throw e;
  process.stderr.write('byline: the compiled build is missing (cli/dist); run "npm run build" first\n');
  process.exit(1);
}
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Once a command is done, idle HTTP keep-alive sockets must not hold the process open for
// seconds: exit as soon as what was written to stdout and stderr has been flushed.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
