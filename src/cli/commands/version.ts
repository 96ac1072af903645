import { parseArgs } from 'node:util';
import { buildInfo } from '../../node/build_info.ts';
import type { Command, CommandOptions } from '../io.ts';

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  json: { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'version',
  options: OPTIONS,
  summary: 'print the version, the digest of the source it runs and its protocol versions',
  usage:
    'zomma version [--json]   (also: zomma --version)\n' +
    '  source: a digest of src/; two nodes run the same code when both their versions and sources match\n' +
    '  execution: the rules of execution (peers of another execution version are refused); wire: the peer protocol',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
    });
    const info = buildInfo();
    io.out(
      values.json
        ? JSON.stringify(info)
        : `zomma ${info.version} (source ${info.source}, execution version ${info.executionVersion}, wire version ${info.wireVersion})`,
    );
    return 0;
  },
};
