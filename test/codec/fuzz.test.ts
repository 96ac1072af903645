import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../scripts/fuzz-codec.ts';

test('20,000 fuzzed transaction encodings: DecodeError or a canonical decode, nothing else', () => {
  const summary = runFuzz(20_000, 7);
  assert.equal(summary.findings, 0, JSON.stringify(summary.firstFinding));
  assert.ok(summary.decodeErrors > 10_000, 'most mutations are refused');
  assert.ok(summary.valid > 1_000);
});

test('a seed reproduces its run exactly', () => {
  assert.deepEqual(runFuzz(2_000, 3), runFuzz(2_000, 3));
});
