// Each architectural lint rule, shown catching a planted violation (and
// letting the clean version through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });

async function messagesFor(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path });
  assert.ok(result, 'eslint returned no result');
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

async function assertCaught(path: string, code: string, rule: string): Promise<void> {
  const messages = await messagesFor(path, code);
  assert.ok(
    messages.some((m) => m.startsWith(`${rule}:`)),
    `expected ${rule} in ${path}, got ${JSON.stringify(messages)}`,
  );
}

async function assertClean(path: string, code: string): Promise<void> {
  assert.deepEqual(await messagesFor(path, code), []);
}

test('a pure core may not import from node, api, sim or cli', async () => {
  for (const upper of ['node', 'api', 'sim', 'cli']) {
    await assertCaught(
      'src/exchange/x.ts',
      `import { a } from '../${upper}/a.ts';\nexport const b = a;\n`,
      'no-restricted-imports',
    );
    await assertCaught(
      'src/consensus/deep/x.ts',
      `import { a } from '../../${upper}/a.ts';\nexport const b = a;\n`,
      'no-restricted-imports',
    );
  }
  await assertClean(
    'src/exchange/x.ts',
    `import { assert } from '../lib/assert.ts';\nassert(true);\n`,
  );
});

test('a pure core may not import node builtins or packages', async () => {
  await assertCaught(
    'src/math/x.ts',
    `import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n`,
    'no-restricted-imports',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `import ws from 'ws';\nexport const w = ws;\n`,
    'no-restricted-imports',
  );
});

test('lower layers may not import upper layers', async () => {
  await assertCaught(
    'src/lib/x.ts',
    `import { a } from '../codec/a.ts';\nexport const b = a;\n`,
    'no-restricted-imports',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `import { a } from '../exchange/a.ts';\nexport const b = a;\n`,
    'no-restricted-imports',
  );
  await assertCaught(
    'src/api/x.ts',
    `import { a } from '../node/a.ts';\nexport const b = a;\n`,
    'no-restricted-imports',
  );
});

test('nothing prints outside src/cli', async () => {
  await assertCaught('src/node/x.ts', `console.log('hi');\n`, 'no-console');
  await assertCaught(
    'src/exchange/x.ts',
    `process.stdout.write('hi');\n`,
    'no-restricted-properties',
  );
  await assertCaught('src/node/x.ts', `process.stdout.write('hi');\n`, 'no-restricted-properties');
  await assertClean('src/cli/x.ts', `console.log('hi');\n`);
});

test('no float literals in the cores', async () => {
  await assertCaught('src/exchange/x.ts', `export const fee = 0.5;\n`, 'no-restricted-syntax');
  await assertCaught('src/math/x.ts', `export const big = 1e6;\n`, 'no-restricted-syntax');
  await assertClean('src/exchange/x.ts', `export const fee = 5;\nexport const s = '0.5';\n`);
});

test('no `/` on numbers in the cores', async () => {
  await assertCaught(
    'src/exchange/x.ts',
    `export const f = (a: number, b: number): number => a / b;\n`,
    'no-restricted-syntax',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `export function f(a: number): number {\n  a /= 2;\n  return a;\n}\n`,
    'no-restricted-syntax',
  );
  await assertClean('src/node/x.ts', `export const f = (a: number, b: number): number => a / b;\n`);
});

test('no randomness, clocks, timers or transcendental Math in the cores', async () => {
  await assertCaught(
    'src/exchange/x.ts',
    `export const r = Math.random();\n`,
    'no-restricted-properties',
  );
  await assertCaught(
    'src/math/x.ts',
    `export const e = Math.exp(1);\n`,
    'no-restricted-properties',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `export const t = Date.now();\n`,
    'no-restricted-globals',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `export const t = performance.now();\n`,
    'no-restricted-globals',
  );
  await assertCaught(
    'src/consensus/x.ts',
    `setTimeout(() => undefined, 1);\n`,
    'no-restricted-globals',
  );
  await assertClean('src/exchange/x.ts', `export const m = Math.max(1, 2);\n`);
});
