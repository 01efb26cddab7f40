/** `byline verify`: the build's entry point for the command; the work is in ../verify.ts. */
export { verify as run } from '../verify.js';
