// The flags docs/simulator.md and docs/stress.md document are the flags the
// commands take: each one documented is accepted by the parser, and each one
// the command's usage lists is documented.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { COMMANDS } from '../../src/cli/commands.ts';
import { zomma } from './helpers.ts';

function flagsIn(text: string): Set<string> {
  return new Set(text.match(/--[a-z][a-z-]*/g) ?? []);
}

for (const [name, doc] of [
  ['sim', 'docs/simulator.md'],
  ['stress', 'docs/stress.md'],
] as const) {
  test(`zomma ${name}: every flag of ${doc} is taken, every flag of its usage documented`, async () => {
    // The option table's rows and the command lines of the page (not other tools' flags).
    const lines = readFileSync(doc, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('| `--') || l.includes(`zomma ${name} `));
    const documented = flagsIn(lines.join('\n'));
    const usage = (await COMMANDS.find((c) => c.name === name)!.load()).usage;
    for (const flag of flagsIn(usage)) {
      if (flag !== '--help')
        assert.ok(documented.has(flag), `${flag} is in the usage, not in ${doc}`);
    }
    for (const flag of documented) {
      if (flag === '--help') continue;
      // 'x' is a bad value (or a stray argument) for every flag: each stops at a usage or
      // input error before any run, never at an unknown option.
      const r = await zomma(name, flag, 'x');
      assert.ok(r.code === 1 || r.code === 2, `${flag}: exit ${r.code}`);
      assert.doesNotMatch(
        r.err,
        /Unknown option/,
        `${doc} documents ${flag}, the parser refuses it`,
      );
    }
  });
}
