/**
 * `byline <command>`: finds the command in the table, answers --help and --version, parses the
 * arguments from the same table and runs the command. A mistake in the arguments exits 2 before
 * anything starts; a failure of the command itself exits 1.
 */
import { BYLINE_VERSION } from '@byline/api/version';
import {
  type CommandSpec,
  commandHelp,
  findCommand,
  overviewHelp,
  parseCommand,
  UsageError,
  wantsHelp,
} from './command-table.js';
import { COMMANDS } from './commands.js';

export async function main(
  argv: string[],
  commands: readonly CommandSpec[] = COMMANDS,
  program = 'byline',
): Promise<number> {
  let [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    const spec = topic === undefined ? undefined : findCommand(commands, rest)?.spec;
    if (topic !== undefined && !spec) return unknown(topic, commands, program);
    process.stdout.write(spec ? commandHelp(spec, program) : overviewHelp(commands, program));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`byline ${BYLINE_VERSION} (node ${process.versions.node})\n`);
    return 0;
  }
  const found = findCommand(commands, [name, rest[0]]);
  if (!found) return unknown(name, commands, program);
  const spec = found.spec;
  if (found.words === 2) rest.shift();
  name = spec.name;
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(spec, program));
    return 0;
  }
  let values: ReturnType<typeof parseCommand>;
  try {
    values = parseCommand(spec, rest);
  } catch (e) {
    process.stderr.write(`${program} ${name}: ${(e as Error).message}\n${seeHelp(name, program)}`);
    return 2;
  }
  try {
    return await spec.run(values);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${program} ${name}: ${e.message}\n${seeHelp(name, program)}`);
      return 2;
    }
    process.stderr.write(`${program} ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

function overviewHelpFor(family: readonly CommandSpec[], program: string): string {
  return `${family.map((c) => `  ${program} ${c.name}  ${c.summary}`).join('\n')}\n`;
}

function seeHelp(name: string, program: string): string {
  return `run "${program} ${name} --help" for its options\n`;
}

function unknown(name: string, commands: readonly CommandSpec[], program: string): number {
  const family = commands.filter((c) => c.name.startsWith(`${name.split(' ')[0]} `));
  if (family.length > 0) {
    process.stderr.write(
      `${program} ${name}: give one of: ${family.map((c) => c.name).join(', ')}\n${overviewHelpFor(family, program)}`,
    );
    return 2;
  }
  process.stderr.write(`${program}: unknown command "${name}"\n\n${overviewHelp(commands, program)}`);
  return 2;
}
