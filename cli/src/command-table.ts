/**
 * One table describes every `byline` subcommand; the argument parser and the help text are both
 * made from it, so they cannot disagree. Pure: no I/O, so it is tested without processes.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in the help, e.g. FILE (string options only). */
  arg?: string;
  description: string;
  default?: string | boolean;
  /** Allowed values, checked after parsing and listed in the help. */
  choices?: readonly string[];
  required?: boolean;
  /** Repeatable (string options): the value is then a list, in the order given. */
  multiple?: boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** The key under which a command's one operand (e.g. `byline approve NAME`) is handed to it. */
export const OPERAND = '_operand';
/** The key under which what follows `--` is handed to a command that passes it on (`byline connect`). */
export const PASS_THROUGH = '_passThrough';

export interface CommandSpec {
  name: string;
  /** One line for `byline --help`. */
  summary: string;
  /** What follows `byline NAME` in the usage line. */
  synopsis: string;
  options: Record<string, OptionSpec>;
  /** The placeholder of the one operand the command takes after its name (e.g. NAME); none when absent. */
  operand?: string;
  /** Free text after the option list: rules the table cannot say, examples. */
  notes?: string;
  /** What the arguments after `--` are, when the command hands them on (e.g. PSQL-ARGS); refused otherwise. */
  passThrough?: string;
  run(values: OptionValues): Promise<number>;
}

/** A mistake in how the command was called: exits 2 and points at the help. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Flags every command answers; they are kept out of each table entry. */
const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

export function wantsHelp(args: readonly string[]): boolean {
  // Stops at `--`: what follows is not an option.
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * The command `words` name: a two-word command (`approval request`) before a one-word one. Returns
 * the spec and how many words it took, or null.
 */
export function findCommand(
  commands: readonly CommandSpec[],
  words: readonly (string | undefined)[],
): { spec: CommandSpec; words: 1 | 2 } | null {
  const [first, second] = words;
  if (first === undefined) return null;
  const pair = second === undefined ? undefined : commands.find((c) => c.name === `${first} ${second}`);
  if (pair) return { spec: pair, words: 2 };
  const one = commands.find((c) => c.name === first);
  return one ? { spec: one, words: 1 } : null;
}

/** Parses a command's arguments strictly; a UsageError names the first problem. */
export function parseCommand(spec: CommandSpec, args: readonly string[]): OptionValues {
  const options: Record<
    string,
    { type: 'string' | 'boolean'; short?: string; default?: string | boolean; multiple?: boolean }
  > = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
    if (o.default !== undefined) options[name].default = o.default;
  }
  let values: OptionValues;
  let positionals: string[];
  const split = spec.passThrough ? args.indexOf('--') : -1;
  const own = split === -1 ? [...args] : args.slice(0, split);
  try {
    const parsed = parseArgs({ args: own, options, strict: true, allowPositionals: !!spec.operand });
    // Only string options are repeatable, so a list is always a list of strings.
    values = parsed.values as OptionValues;
    positionals = parsed.positionals;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (spec.operand) {
    if (positionals.length !== 1)
      throw new UsageError(
        `expected one ${spec.operand}, got ${positionals.length === 0 ? 'none' : positionals.length}`,
      );
    values[OPERAND] = positionals[0];
  }
  if (spec.passThrough) values[PASS_THROUGH] = split === -1 ? [] : args.slice(split + 1);
  const missing = Object.entries(spec.options)
    .filter(([name, o]) => o.required && values[name] === undefined)
    .map(([name, o]) => `--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`);
  if (missing.length > 0)
    throw new UsageError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  for (const [name, o] of Object.entries(spec.options)) {
    const v = values[name];
    if (o.choices && typeof v === 'string' && !o.choices.includes(v)) {
      throw new UsageError(`--${name} must be ${orList(o.choices)}, got ${JSON.stringify(v)}`);
    }
  }
  return values;
}

function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** `byline NAME --help`; `program` is how the user called us (`kubectl byline` for the plugin). */
export function commandHelp(spec: CommandSpec, program = 'byline'): string {
  const rows = Object.entries({ ...spec.options, help: HELP }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    let text = o.description;
    if (o.multiple) text += ' (repeatable)';
    if (o.choices) text += ` (${o.choices.join(' | ')})`;
    if (o.default !== undefined && o.default !== false) text += ` [default: ${o.default}]`;
    if (o.required) text += ' (required)';
    return [flag, text] as const;
  });
  return [
    `usage: ${program} ${spec.name} ${spec.operand ? `${spec.operand} ` : ''}${spec.synopsis}${spec.passThrough ? ` [-- ${spec.passThrough}]` : ''}`.trimEnd(),
    '',
    spec.summary,
    '',
    'options:',
    ...table(rows),
    ...(spec.notes ? ['', spec.notes.trimEnd()] : []),
    '',
  ].join('\n');
}

/** `byline --help`. */
export function overviewHelp(commands: readonly CommandSpec[], program = 'byline'): string {
  const width = program.length + 17;
  return [
    `usage: ${program} <command> [options]`,
    '',
    'commands:',
    ...table(commands.map((c) => [c.name, c.summary] as const)),
    '',
    `  ${`${program} <command> --help`.padEnd(width)}   the options of one command`,
    `  ${`${program} --version`.padEnd(width)}   the version of this build`,
    '',
  ].join('\n');
}

function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([left, right]) =>
    left.length + 2 > width ? `  ${left}\n  ${' '.repeat(width)}${right}` : `  ${left.padEnd(width)}${right}`,
  );
}
