// Runs the CLI in-process, as `zomma <argv>` would, and keeps what it printed.

import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

export async function zomma(
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) };
  const code = await main(argv, io);
  return { code, out, err };
}
