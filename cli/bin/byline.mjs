#!/usr/bin/env node
// The byline command. Runs the TypeScript sources through tsx's loader, so `npm ci` is the only
// set-up step; `npm run build` is not needed to use it.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
