import { readFileSync } from 'node:fs';
import type { Command } from '../io.ts';

export const command: Command = {
  name: 'version',
  summary: 'print the version',
  usage: 'zomma version',
  async run(_args, io) {
    const pkg = JSON.parse(
      readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    io.out(`zomma ${pkg.version}`);
    return 0;
  },
};
