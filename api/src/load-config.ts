/** Reads a YAML or JSON config file and validates it; never returns a half-valid config. */
import { readFileSync } from 'node:fs';
import type { Static, TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { ValidationError, validate } from './validate.js';

export function loadConfigFile<S extends TSchema>(path: string, schema: S, what: string): Static<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(what, [`cannot read ${path}: ${(e as Error).message}`]);
  }
  let value: unknown;
  try {
    // YAML is a superset of JSON, so one parser serves both.
    value = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    throw new ValidationError(what, [`${path} is not valid YAML or JSON: ${(e as Error).message}`]);
  }
  return validate(schema, value, `${what} (${path})`);
}
