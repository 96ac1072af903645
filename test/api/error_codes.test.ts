// docs/api.md and the codes the API answers with: every code the API, the
// node's submission checks or the exchange can answer is one the document
// names, and every code of its error table is one of those, under the status
// it is answered with.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { API_ERROR_CODES, statusOfCode } from '../../src/api/errors.ts';
import { SUBMIT_REJECT_CODES, TX_DROP_CODES } from '../../src/api/view.ts';
import { REJECT_CODES } from '../../src/exchange/errors.ts';

const DOC = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
const CODE = /`([A-Z][a-z][A-Za-z0-9]*)`/g;

/** The rows of the "Errors" section's table: each status and the codes its row names. */
function errorTable(): [number, string[]][] {
  const section = DOC.slice(
    DOC.indexOf('## Errors'),
    DOC.indexOf('\n## ', DOC.indexOf('## Errors') + 1),
  );
  return section
    .split('\n')
    .map((line) => /^\| (\d{3}) +\|(.*)\|$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => [Number(m[1]), [...m[2]!.matchAll(CODE)].map((c) => c[1]!)]);
}

test('every code the API answers with is named in docs/api.md', () => {
  const named = new Set([...DOC.matchAll(CODE)].map((m) => m[1]!));
  for (const code of [...API_ERROR_CODES, ...SUBMIT_REJECT_CODES, ...TX_DROP_CODES]) {
    assert.ok(named.has(code), `docs/api.md names ${code}`);
  }
  // The exchange's rejections are named by their list, REJECT_CODES.
  assert.match(DOC, /`REJECT_CODES` in `src\/exchange\/errors\.ts`/);
});

test("every code of docs/api.md's error table is one the API answers, under its status", () => {
  const known = new Set<string>([
    ...API_ERROR_CODES,
    ...SUBMIT_REJECT_CODES,
    ...TX_DROP_CODES,
    ...REJECT_CODES,
  ]);
  const rows = errorTable();
  assert.ok(rows.length > 10, 'the table is found');
  for (const [status, codes] of rows) {
    for (const code of codes) {
      assert.ok(known.has(code), `${status}: ${code} is a code the API answers with`);
      // A transaction's or the exchange's code is answered with the status statusOfCode gives it.
      const fromTx =
        (SUBMIT_REJECT_CODES as readonly string[]).includes(code) ||
        (REJECT_CODES as readonly string[]).includes(code);
      if (fromTx && !(API_ERROR_CODES as readonly string[]).includes(code)) {
        assert.equal(
          statusOfCode(code),
          status,
          `${code} is listed under the status it is answered with`,
        );
      }
    }
  }
});

test('docs/api.md\'s "Dropped transactions" table lists every drop code, under the status it is answered with', () => {
  const rows = [...DOC.matchAll(/^\| `([A-Za-z]+)` +\| (\d{3}) +\|/gm)].map(
    (m) => [m[1]!, Number(m[2])] as const,
  );
  assert.deepEqual(
    rows.map(([code]) => code).sort(),
    [...TX_DROP_CODES].sort(),
    'one row per drop code',
  );
  for (const [code, status] of rows) {
    assert.equal(statusOfCode(code), status, `${code} is answered with ${status}`);
  }
  // The code a node alone decides is one the API itself answers with.
  assert.ok((API_ERROR_CODES as readonly string[]).includes('Evicted'), 'Evicted is an API code');
});
