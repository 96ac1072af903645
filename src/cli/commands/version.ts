import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../io.ts';

export const command: Command = {
  name: 'version',
  summary: 'print the version',
  usage: 'zomma version [--json]   (also: zomma --version)',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: { json: { type: 'boolean', default: false } },
      strict: true,
    });
    const pkg = JSON.parse(
      readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    io.out(values.json ? JSON.stringify({ version: pkg.version }) : `zomma ${pkg.version}`);
    return 0;
  },
};
