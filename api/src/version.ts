/**
 * The version of Byline this code is, from api/package.json (the workspaces are versioned
 * together). Read once at load; the file sits one level above both src/ and a compiled dist/.
 */
import { readFileSync } from 'node:fs';

export const BYLINE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
