// The evidence rule (spentOffence, docs/protocol.md "Evidence") takes a
// validator out of the set deciding the next height as punished for good: the
// applications remove a validator only by jailing it for committed evidence,
// and never bring it back. These tests pin that assumption in the sources
// that make validator updates, so that a change adding another way out of the
// set (an exit, a power change from governance, an unjailing) fails here and
// is pointed at the rule it would break.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const RULE =
  'spentOffence (src/consensus/replica.ts) refuses evidence against a validator out of the next set, ' +
  'taking it as jailed for good. If this change adds another way out of the set (an exit, a power ' +
  'change, an unjailing), change that rule first (evidence against a validator that left otherwise ' +
  'must still be judged; docs/protocol.md, "Evidence"), then update the lines expected here. If it ' +
  'only reshapes code that still removes a validator by jailing alone, update the lines expected here';

function sources(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ path: path.slice(ROOT.length + 1), text: readFileSync(path, 'utf8') });
  }
  return out;
}

/** Lines that write a validator's consensus power (`power:` in an object, `.power =`), comments aside. */
function powerWrites(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line) && /\bpower\s*:|\.power\s*=[^=]/.test(line))
    .filter((line) => !/readonly power\s*:/.test(line))
    .map((line) => line.trim());
}

test('the exchange changes a validator power only by jailing it (power 0), in applyEvidence', () => {
  const writes = sources('src/exchange').flatMap(({ path, text }) =>
    powerWrites(text).map((line) => `${path}: ${line}`),
  );
  assert.deepEqual(
    writes,
    ['src/exchange/governance.ts: updates.push({ publicKey: validator.publicKey, power: 0 });'],
    RULE,
  );
  const governance = readFileSync(join(ROOT, 'src/exchange/governance.ts'), 'utf8');
  const body = governance.slice(governance.indexOf('export function applyEvidence('));
  const push = body.indexOf('updates.push(');
  assert.ok(push > 0 && body.lastIndexOf('jail(state, validator)', push) > 0, RULE);
  // The block's updates are applyEvidence's, and nothing else.
  const exchange = readFileSync(join(ROOT, 'src/exchange/exchange.ts'), 'utf8');
  const bindings = exchange.match(/validatorUpdates\s*=[^=].*/g) ?? [];
  assert.deepEqual(
    bindings.map((b) => b.trim()),
    ['validatorUpdates = applyEvidence(state, block.evidence ?? [], events);'],
    RULE,
  );
  // A jailed validator stays jailed: nothing sets it free (a restore reads the flag as written).
  for (const { path, text } of sources('src/exchange')) {
    for (const line of text.split('\n')) {
      assert.ok(!/\bjailed\s*:\s*false/.test(line), `${path}: ${line.trim()}: ${RULE}`);
      if (!/\.jailed\s*=[^=]/.test(line)) continue;
      assert.ok(
        /\.jailed\s*=\s*true/.test(line) || path === 'src/exchange/encoding.ts',
        `${path}: ${line.trim()}: ${RULE}`,
      );
    }
  }
});

test("the node hands consensus the exchange's updates as they are; the simulated app jails only (power 0)", () => {
  const app = readFileSync(join(ROOT, 'src/node/app.ts'), 'utf8');
  const handed = app.match(/validatorUpdates\s*:.*/g) ?? [];
  assert.deepEqual(
    handed.map((b) => b.trim()),
    ['validatorUpdates: result.validatorUpdates };'],
    RULE,
  );
  const sim = readFileSync(join(ROOT, 'src/sim/app.ts'), 'utf8');
  assert.deepEqual(powerWrites(sim), ['updates.push({ publicKey: m.publicKey, power: 0 });'], RULE);
});
