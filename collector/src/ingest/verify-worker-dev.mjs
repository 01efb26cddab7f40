// Runs verify-worker.ts from sources (tsx, vitest): registers tsx's loader in this worker thread,
// which does not inherit the parent's loader, then loads the worker. The compiled build runs
// cli/dist/verify-worker.js instead (VerifyPool picks which).
import { register } from 'tsx/esm/api';

register();
await import('./verify-worker.ts');
