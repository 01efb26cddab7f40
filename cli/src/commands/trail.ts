/** `byline trail`: the build's entry point for the command; the work is in ../trail.ts. */
export { trail as run } from '../trail.js';
