export * from './audit-event.js';
export * from './canonical-json.js';
export * from './chain.js';
export * from './load-config.js';
export * from './sidecar-config.js';
export * from './uuid.js';
export * from './validate.js';
