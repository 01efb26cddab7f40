export * from './agent-identity.js';
export * from './approval.js';
export * from './common.js';
export * from './database-route.js';
export * from './guardrails.js';
