import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  const code = await main(['greeks', ...argv], io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const HULL = [
  '--spot',
  '100',
  '--strike',
  '100',
  '--expiry',
  '1',
  '--vol',
  '0.2',
  '--rate',
  '0.05',
];

test('prices a call as a table', async () => {
  const r = await run(...HULL);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^call {2}spot 100 {2}strike 100 {2}expiry 1 years {2}rate 5% {2}vol 20%/);
  assert.match(r.out, /price +10\.4505835722/);
  assert.match(r.out, /delta +0\.6368306512/);
  assert.match(r.out, /vega +37\.5240346917 {2}per 1\.00 vol/);
});

test('--json gives every value as an 18-decimal string; percentages read as fractions', async () => {
  const r = await run(...HULL.slice(0, 6), '--vol', '20%', '--rate', '5%', '--put', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(j.type, 'put');
  assert.equal(j.vol, '0.200000000000000000');
  assert.equal(j.rate, '0.050000000000000000');
  assert.equal(j.volFromPrice, false);
  // mpmath: 5.57352602225696769079...
  assert.equal(j.price, '5.573526022256967691');
  for (const name of ['delta', 'gamma', 'vega', 'theta', 'rho', 'vanna', 'volga']) {
    assert.match(String(j[name]), /^-?\d+\.\d{18}$/, name);
  }
});

test('--price solves for the implied volatility', async () => {
  const r = await run(
    ...HULL.slice(0, 6),
    '--rate',
    '0.05',
    '--price',
    '10.450583572185566782',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, string>;
  assert.equal(j.volFromPrice, true);
  assert.ok(Math.abs(Number(j.vol) - 0.2) < 1e-15, j.vol);
});

test('a date expiry is measured from --now, at 08:00 UTC', async () => {
  const r = await run(
    '--spot',
    '60000',
    '--strike',
    '65000',
    '--expiry',
    '2027-06-01',
    '--now',
    '2026-06-01T08:00:00Z',
    '--vol',
    '0.8',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, string>;
  assert.equal(j.timeYears, '1.000000000000000000'); // 365 days, ACT/365
});

test('impossible input is refused with a clear message and a non-zero exit', async () => {
  const cases: Array<[string[], number, RegExp]> = [
    [
      ['--spot', '100', '--strike', '100', '--expiry', '1', '--vol=-0.2'],
      2,
      /--vol must be positive/,
    ],
    [
      ['--spot', '100', '--strike', '100', '--expiry', '1', '--vol', '0'],
      2,
      /--vol must be positive/,
    ],
    [
      ['--spot', 'abc', '--strike', '100', '--expiry', '1', '--vol', '0.2'],
      2,
      /--spot: not a decimal/,
    ],
    [['--spot', '100', '--strike', '1e5', '--expiry', '1', '--vol', '0.2'], 2, /--strike/],
    [['--spot', '100', '--strike', '100', '--expiry', '1'], 2, /exactly one of --vol/],
    [
      ['--spot', '100', '--strike', '100', '--expiry', '1', '--vol', '0.2', '--price', '5'],
      2,
      /exactly one of --vol/,
    ],
    [
      ['--spot', '100', '--strike', '100', '--expiry', '2020-01-01', '--vol', '0.2'],
      2,
      /in the past/,
    ],
    [['--spot', '100', '--strike', '100', '--expiry', 'soon', '--vol', '0.2'], 2, /--expiry/],
    [['--spot', '100', '--strike', '100', '--expiry', '0', '--vol', '0.2'], 2, /after now/],
    [
      ['--spot', '100', '--strike', '100', '--expiry', '1', '--vol', '0.2', '--rate', '-0.01'],
      2,
      /--rate/,
    ],
    [['--strike', '100', '--expiry', '1', '--vol', '0.2'], 2, /--spot is required/],
    [['--spot', '100', '--strike', '100', '--expiry', '1', '--vol', '50'], 1, /BadInput: vol 50/],
    [
      ['--spot', '100', '--strike', '50', '--expiry', '1', '--price', '10'],
      1,
      /NoVolatilityFits: price 10 is at or below/,
    ],
    [
      ['--spot', '100', '--strike', '100', '--expiry', '1', '--price', '100'],
      1,
      /NoVolatilityFits: price 100 is at or above/,
    ],
  ];
  for (const [argv, code, message] of cases) {
    const r = await run(...argv);
    assert.equal(r.code, code, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, message, argv.join(' '));
    assert.equal(r.out, '');
  }
});

test('--help prints the usage', async () => {
  const r = await run('--help');
  assert.equal(r.code, 0);
  assert.match(r.out, /--expiry E/);
});
