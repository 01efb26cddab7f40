// Preloaded with `node --import` by the build test: records the URL of every module the process
// loads (ES modules, and CommonJS packages entered from them) into $BYLINE_MODULE_LOG.
import { register } from 'node:module';

register('./module-log-hooks.mjs', import.meta.url, { data: { file: process.env.BYLINE_MODULE_LOG } });
