import { describe, expect, test } from 'vitest';
import {
  type CommandSpec,
  commandHelp,
  findCommand,
  OPERAND,
  overviewHelp,
  parseCommand,
  UsageError,
  wantsHelp,
} from './command-table.js';
import { COMMANDS } from './commands.js';

const spec: CommandSpec = {
  name: 'thing',
  summary: 'does a thing',
  synopsis: '--config FILE [options]',
  options: {
    config: { type: 'string', short: 'c', arg: 'FILE', required: true, description: 'the config' },
    format: { type: 'string', arg: 'FORMAT', choices: ['json', 'pretty'], default: 'json', description: 'how' },
    keep: { type: 'boolean', default: false, description: 'keep it' },
  },
  notes: 'Some rule the table cannot say.',
  run: async () => 0,
};

describe('parseCommand', () => {
  test('long and short options, defaults applied', () => {
    expect(parseCommand(spec, ['-c', 'a.yaml'])).toEqual({ config: 'a.yaml', format: 'json', keep: false });
    expect(parseCommand(spec, ['--config=b.yaml', '--format', 'pretty', '--keep'])).toEqual({
      config: 'b.yaml',
      format: 'pretty',
      keep: true,
    });
  });

  test.each<[string, string[], string]>([
    ['a required option missing', [], '--config FILE is required'],
    ['an unknown option', ['-c', 'x', '--confg', 'y'], "Unknown option '--confg'"],
    ['a value outside the choices', ['-c', 'x', '--format', 'xml'], '--format must be json or pretty, got "xml"'],
    ['a positional argument', ['-c', 'x', 'extra'], 'Unexpected argument'],
    ['a string option without its value', ['--config'], "Option '-c, --config <value>' argument missing"],
  ])('%s → a UsageError naming it', (_name, args, message) => {
    expect(() => parseCommand(spec, args)).toThrow(UsageError);
    expect(() => parseCommand(spec, args)).toThrow(message);
  });
});

describe('wantsHelp', () => {
  test.each<[string[], boolean]>([
    [['--help'], true],
    [['-c', 'x', '-h'], true],
    [['--bogus', '--help'], true],
    [['-c', 'x'], false],
    [['--', '--help'], false],
    [['--helpful'], false],
  ])('%j → %s', (args, expected) => {
    expect(wantsHelp(args)).toBe(expected);
  });
});

describe('help text comes from the table', () => {
  test('a command: usage, every option with its placeholder, choices, default, required, notes', () => {
    expect(commandHelp(spec)).toBe(
      [
        'usage: byline thing --config FILE [options]',
        '',
        'does a thing',
        '',
        'options:',
        '  -c, --config FILE    the config (required)',
        '      --format FORMAT  how (json | pretty) [default: json]',
        '      --keep           keep it',
        '  -h, --help           show this help',
        '',
        'Some rule the table cannot say.',
        '',
      ].join('\n'),
    );
  });

  test('every option of every real command appears in its help, and every command in the overview', () => {
    const overview = overviewHelp(COMMANDS);
    for (const command of COMMANDS) {
      expect(overview).toMatch(new RegExp(`^ {2}${command.name} +${escapeRegExp(command.summary)}$`, 'm'));
      const help = commandHelp(command);
      for (const [name, option] of Object.entries(command.options)) {
        expect(help).toContain(`--${name}${option.type === 'string' ? ` ${option.arg}` : ''}`);
        expect(help).toContain(option.description);
      }
    }
  });

  test('the real table is well-formed: unique names, string options name their placeholder', () => {
    expect(new Set(COMMANDS.map((c) => c.name)).size).toBe(COMMANDS.length);
    for (const command of COMMANDS) {
      const shorts = Object.values(command.options).flatMap((o) => (o.short ? [o.short] : []));
      expect(shorts).not.toContain('h');
      expect(new Set(shorts).size).toBe(shorts.length);
      for (const o of Object.values(command.options)) if (o.type === 'string') expect(o.arg).toMatch(/^[A-Z=]+$/);
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('operands, repeatable options and two-word commands', () => {
  const approve: CommandSpec = {
    name: 'approve',
    summary: 'approve one',
    operand: 'NAME',
    synopsis: '[--reason TEXT]',
    options: { reason: { type: 'string', arg: 'TEXT', description: 'why' } },
    run: async () => 0,
  };
  const request: CommandSpec = {
    name: 'approval request',
    summary: 'ask',
    synopsis: '',
    options: { scope: { type: 'string', arg: 'CLASSES', multiple: true, description: 'what' } },
    run: async () => 0,
  };
  const table = [approve, request, { ...request, name: 'approval list', options: {} }];

  test('exactly one operand, handed over under OPERAND', () => {
    expect(parseCommand(approve, ['migrate-1', '--reason', 'ok'])).toEqual({ [OPERAND]: 'migrate-1', reason: 'ok' });
    expect(() => parseCommand(approve, [])).toThrow('expected one NAME, got none');
    expect(() => parseCommand(approve, ['a', 'b'])).toThrow('expected one NAME, got 2');
    // A command without an operand still refuses stray words.
    expect(() => parseCommand(request, ['stray'])).toThrow(UsageError);
  });

  test('a repeatable option is a list in the order given, and says so in the help', () => {
    expect(parseCommand(request, ['--scope', 'ddl', '--scope', 'write'])).toEqual({ scope: ['ddl', 'write'] });
    expect(commandHelp(request)).toMatch(/--scope CLASSES\s+what \(repeatable\)/);
    expect(commandHelp(approve)).toContain('usage: byline approve NAME [--reason TEXT]');
  });

  test('two words name a two-word command before a one-word one; unknown words find nothing', () => {
    expect(findCommand(table, ['approval', 'request'])).toEqual({ spec: request, words: 2 });
    expect(findCommand(table, ['approve', 'migrate-1'])).toEqual({ spec: approve, words: 1 });
    expect(findCommand(table, ['approval', 'grant'])).toBeNull();
    expect(findCommand(table, [undefined, 'x'])).toBeNull();
  });
});
