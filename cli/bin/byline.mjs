#!/usr/bin/env node
// The byline command. Runs the TypeScript sources through tsx's loader, so `npm ci` is the only
// set-up step; `npm run build` is not needed to use it.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Once a command is done, idle HTTP keep-alive sockets must not hold the process open for
// seconds: exit as soon as what was written to stdout and stderr has been flushed.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
