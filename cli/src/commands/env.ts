/** `byline env` and `byline connect`: the build's entry point; the work is in ../connect.ts. */
export { connect, env as run } from '../connect.js';
