/**
 * `kubectl byline`: the kubectl plugin (cli/bin/kubectl-byline, named as krew expects). It offers
 * the commands a cluster user runs (reading and verifying the trail, asking for and granting
 * approvals), from the same table as `byline`, with help and errors that name `kubectl byline`.
 * The servers (sidecar, collector, operator) and the demo stay `byline`'s.
 */
import { BYLINE_VERSION } from '@byline/api/version';
import type { CommandSpec } from './command-table.js';
import { COMMANDS } from './commands.js';
import { main } from './main.js';

export const KUBECTL_PROGRAM = 'kubectl byline';
const PLUGIN_COMMANDS = ['trail', 'verify', 'approval request', 'approval list', 'approve', 'deny'];

export const KUBECTL_COMMANDS: readonly CommandSpec[] = COMMANDS.filter((c) => PLUGIN_COMMANDS.includes(c.name));

export function kubectlMain(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    process.stdout.write(`kubectl-byline ${BYLINE_VERSION} (node ${process.versions.node})\n`);
    return Promise.resolve(0);
  }
  return main(argv, KUBECTL_COMMANDS, KUBECTL_PROGRAM);
}
