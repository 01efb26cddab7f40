/**
 * `byline <subcommand>`. Each subcommand returns an exit code; a bad config prints what is wrong
 * and exits 2 without starting anything.
 */
import { parseArgs } from 'node:util';
import { loadConfigFile, SidecarConfigSchema, ValidationError } from '@byline/api';
import { startSidecar } from '@byline/sidecar';

const USAGE = `usage: byline <command> [options]

commands:
  sidecar --config FILE   run the Postgres proxy that records every statement (YAML or JSON config)
  help                    show this text
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sidecar':
      return sidecar(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`byline: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function sidecar(args: string[]): Promise<number> {
  let config: ReturnType<typeof loadConfigFile<typeof SidecarConfigSchema>>;
  try {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
    if (!values.config) throw new ValidationError('arguments', ['--config FILE is required']);
    config = loadConfigFile(values.config, SidecarConfigSchema, 'sidecar config');
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 2;
  }
  let running: Awaited<ReturnType<typeof startSidecar>>;
  try {
    running = await startSidecar(config);
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`byline sidecar: ${signal}, closing sessions and flushing the audit trail\n`);
      running.close().then(
        () => resolve(0),
        (e) => {
          process.stderr.write(`byline sidecar: shutdown failed: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
