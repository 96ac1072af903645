// `zomma devnet` refuses a bad flag with a usage error before it writes or
// starts anything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { tempDir } from '../node/helpers.ts';

async function devnet(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const io: Io = { out: () => {}, err: (t) => void (err += `${t}\n`) };
  const code = await main(['devnet', ...argv], io);
  return { code, err };
}

test('devnet: a bad --validators, --base-port or --duration is a usage error, and nothing starts', async () => {
  const home = tempDir('zomma-devnet-flags-');
  const dir = join(home.dir, 'devnet');
  // A valid rest, on ports no one uses by default, should a check be missing.
  const rest = ['--dir', dir, '--base-port', '35900', '--no-bots', '--duration', '1'];
  const cases: [string[], RegExp][] = [
    [['--validators', 'abc'], /--validators must be an integer/],
    [['--validators', '0'], /--validators must be an integer/],
    [['--validators', '2.5'], /--validators must be an integer/],
    [['--validators', '1', '--base-port', 'x'], /--base-port must be an integer/],
    [['--validators', '1', '--duration', '1e10'], /--duration must be/],
  ];
  try {
    for (const [flags, message] of cases) {
      const r = await devnet(...rest, ...flags);
      assert.equal(r.code, 2, flags.join(' '));
      assert.match(r.err, message);
      assert.equal(existsSync(dir), false, 'nothing written');
    }
  } finally {
    home.remove();
  }
});
