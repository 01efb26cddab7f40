/** `byline login`: the build's entry point for the command; the work is in ../login.ts. */
export { login as run } from '../login.js';
