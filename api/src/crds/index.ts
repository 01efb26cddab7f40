export * from './agent-identity.js';
export * from './common.js';
export * from './database-route.js';
