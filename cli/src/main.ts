/**
 * `byline <command>`: finds the command in the table, answers --help and --version, parses the
 * arguments from the same table and runs the command. A mistake in the arguments exits 2 before
 * anything starts; a failure of the command itself exits 1.
 */
import { BYLINE_VERSION } from '@byline/api/version';
import { type CommandSpec, commandHelp, overviewHelp, parseCommand, UsageError, wantsHelp } from './command-table.js';
import { COMMANDS } from './commands.js';

export async function main(argv: string[], commands: readonly CommandSpec[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    const spec = topic === undefined ? undefined : commands.find((c) => c.name === topic);
    if (topic !== undefined && !spec) return unknown(topic, commands);
    process.stdout.write(spec ? commandHelp(spec) : overviewHelp(commands));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`byline ${BYLINE_VERSION} (node ${process.versions.node})\n`);
    return 0;
  }
  const spec = commands.find((c) => c.name === name);
  if (!spec) return unknown(name, commands);
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(spec));
    return 0;
  }
  let values: ReturnType<typeof parseCommand>;
  try {
    values = parseCommand(spec, rest);
  } catch (e) {
    process.stderr.write(`byline ${name}: ${(e as Error).message}\n${seeHelp(name)}`);
    return 2;
  }
  try {
    return await spec.run(values);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`byline ${name}: ${e.message}\n${seeHelp(name)}`);
      return 2;
    }
    process.stderr.write(`byline ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

function seeHelp(name: string): string {
  return `run "byline ${name} --help" for its options\n`;
}

function unknown(name: string, commands: readonly CommandSpec[]): number {
  process.stderr.write(`byline: unknown command "${name}"\n\n${overviewHelp(commands)}`);
  return 2;
}
