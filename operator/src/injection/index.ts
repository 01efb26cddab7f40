export * from './admission.js';
export * from './constants.js';
export * from './json-patch.js';
export * from './mutate.js';
