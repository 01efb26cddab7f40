/** Reads a YAML or JSON config file and validates it; never returns a half-valid config. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Static, TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { resolveConfigPaths } from './config-paths.js';
import { ValidationError, validate } from './validate.js';

export function loadConfigFile<S extends TSchema>(
  path: string,
  schema: S,
  what: string,
  rules?: (value: Static<S>) => string[],
): Static<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(what, [`cannot read ${path}: ${(e as Error).message}`]);
  }
  return loadConfigText(text, path, schema, what, rules, dirname(resolve(path)));
}

/**
 * The same for config text from elsewhere (an environment variable); `source` names it in messages.
 * Relative path fields resolve against `baseDir` (the config file's directory; default: the cwd).
 */
export function loadConfigText<S extends TSchema>(
  text: string,
  source: string,
  schema: S,
  what: string,
  rules?: (value: Static<S>) => string[],
  baseDir?: string,
): Static<S> {
  let value: unknown;
  try {
    // YAML is a superset of JSON, so one parser serves both.
    value = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    throw new ValidationError(what, [`${source} is not valid YAML or JSON: ${(e as Error).message}`]);
  }
  // Before the rules run: they read some of these files (token files, for one).
  if (baseDir !== undefined) resolveConfigPaths(value, baseDir);
  return validate(schema, value, `${what} (${source})`, rules);
}
