// Preloaded with `node --import` by the build test: records the URL of every module the process
// loads (ES modules, and CommonJS packages entered from them) into $BYLINE_MODULE_LOG, and every
// CommonJS file that require() loads (the bundle's createRequire, a package requiring another),
// which the loader hooks below do not see.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const file = process.env.BYLINE_MODULE_LOG;
register('./module-log-hooks.mjs', import.meta.url, { data: { file } });
const loadJs = Module._extensions['.js'];
Module._extensions['.js'] = function (module, filename) {
  if (file) appendFileSync(file, `${pathToFileURL(filename).href}\n`);
  return loadJs.call(this, module, filename);
};
