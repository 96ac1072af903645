import { parseArgs } from 'node:util';
import { buildInfo } from '../../node/build_info.ts';
import type { Command } from '../io.ts';

export const command: Command = {
  name: 'version',
  summary: 'print the version and the digest of the source it runs',
  usage:
    'zomma version [--json]   (also: zomma --version)\n' +
    '  source: a digest of src/; two nodes run the same code when both their versions and sources match',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: { json: { type: 'boolean', default: false } },
      strict: true,
    });
    const { version, source } = buildInfo();
    io.out(
      values.json ? JSON.stringify({ version, source }) : `zomma ${version} (source ${source})`,
    );
    return 0;
  },
};
