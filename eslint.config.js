// Lint rules that encode the architecture (docs/architecture.md):
//  1. dependencies point downward only; the pure cores import only relative paths;
//  2. nothing prints outside src/cli (bench/ and scripts/ are programs too);
//  3. no floats, clocks, timers or randomness in exchange, consensus and math.
// test/lint/rules.test.ts plants a violation of each rule and checks that it is caught.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const FOLDERS = [
  'lib',
  'codec',
  'crypto',
  'math',
  'exchange',
  'consensus',
  'sim',
  'node',
  'api',
  'cli',
];

/** What each folder under src/ may import from its siblings. */
const ALLOWED = {
  lib: [],
  codec: ['lib'],
  crypto: ['lib', 'codec'],
  math: ['lib'],
  exchange: ['lib', 'codec', 'crypto', 'math'],
  consensus: ['lib', 'codec', 'crypto'],
  sim: ['lib', 'codec', 'crypto', 'math', 'exchange', 'consensus'],
  api: ['lib', 'codec', 'crypto', 'math', 'exchange', 'consensus'],
  node: ['lib', 'codec', 'crypto', 'math', 'exchange', 'consensus', 'api'],
  cli: ['lib', 'codec', 'crypto', 'math', 'exchange', 'consensus', 'sim', 'node', 'api'],
};

const CORES = ['exchange', 'consensus', 'math'];

function layering(folder) {
  const forbidden = FOLDERS.filter((f) => f !== folder && !ALLOWED[folder].includes(f));
  const patterns = forbidden.map((f) => ({
    regex: `(^|/)\\.\\./(\\.\\./)*${f}(/|$)`,
    message: `src/${folder} may not import from src/${f}: dependencies point downward (docs/architecture.md).`,
  }));
  if (CORES.includes(folder)) {
    patterns.push({
      regex: '^[^.]',
      message: `src/${folder} is a pure core: it imports only our own modules (no node:*, no packages).`,
    });
  }
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

const NON_DETERMINISTIC_MATH = [
  'random',
  'exp',
  'expm1',
  'log',
  'log1p',
  'log2',
  'log10',
  'pow',
  'sqrt',
  'cbrt',
  'hypot',
  'sin',
  'cos',
  'tan',
  'asin',
  'acos',
  'atan',
  'atan2',
  'sinh',
  'cosh',
  'tanh',
  'asinh',
  'acosh',
  'atanh',
  'fround',
  'round',
  'floor',
  'ceil',
];

const determinism = {
  files: CORES.map((f) => `src/${f}/**/*.ts`),
  rules: {
    'no-restricted-syntax': [
      'error',
      {
        selector: 'Literal[raw=/^[0-9_]*\\.[0-9]|^[0-9_]+[eE]/]',
        message: 'No float literals in a pure core: use integers (write 1e6 as 1_000_000).',
      },
      {
        selector: "BinaryExpression[operator='/']",
        message:
          'No `/` in a pure core: use divFloor/divCeil/divTrunc/mulDiv from lib/int.ts, which name their rounding.',
      },
      {
        selector: "AssignmentExpression[operator='/=']",
        message: 'No `/=` in a pure core: use the integer helpers from lib/int.ts.',
      },
      {
        selector:
          "CallExpression[callee.name='parseFloat'], MemberExpression[property.name='parseFloat']",
        message: 'No parseFloat in a pure core.',
      },
      {
        selector: 'MemberExpression[property.name=/^(toFixed|toPrecision|toExponential)$/]',
        message: 'No float formatting in a pure core.',
      },
    ],
    'no-restricted-globals': [
      'error',
      ...[
        'Date',
        'performance',
        'setTimeout',
        'setInterval',
        'setImmediate',
        'clearTimeout',
        'clearInterval',
        'queueMicrotask',
        'process',
        'Float32Array',
        'Float64Array',
        'crypto',
      ].map((name) => ({
        name,
        message: `${name} is not deterministic or not pure: time, randomness and I/O enter a core only through its inputs.`,
      })),
    ],
    'no-restricted-properties': [
      'error',
      ...NON_DETERMINISTIC_MATH.map((property) => ({
        object: 'Math',
        property,
        message: `Math.${property} is a float (or random) operation: use lib/int.ts or math/fixed.ts.`,
      })),
    ],
  },
};

/** The dashboard's browser files, per folder depth under src/web (import paths are relative). */
function webBrowserCode() {
  return [
    { files: ['src/web/*.ts'], up: '\\.\\./', inside: '\\./' },
    { files: ['src/web/views/*.ts'], up: '\\.\\./\\.\\./', inside: '\\./|\\.\\./[^./]' },
  ].map(({ files, up, inside }) => ({
    files,
    ignores: ['src/web/build.ts', 'src/web/serve.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // channels.ts is written for both sides: no Node or browser API in it.
              regex: `^${up}api/(?!client/channels\\.ts$)`,
              allowTypeImports: true,
              message:
                'Browser code takes only types from src/api (import type), and values from api/client/channels.ts.',
            },
            {
              regex: `^(?!${inside}|${up}api/)`,
              message: 'Browser code imports only src/web files (and types from src/api).',
            },
          ],
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'artifacts/**', '.zomma/**', 'src/api/web/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...FOLDERS.map(layering),
  determinism,
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'stdout', message: 'Only src/cli prints.' },
        { object: 'process', property: 'stderr', message: 'Only src/cli prints.' },
        { object: 'process', property: 'exit', message: 'Only src/cli exits.' },
      ],
    },
  },
  // The determinism block above sets no-restricted-properties for the cores;
  // flat config replaces rather than merges a rule's options, so restate both there.
  {
    files: CORES.map((f) => `src/${f}/**/*.ts`),
    rules: {
      'no-restricted-properties': [
        'error',
        ...determinism.rules['no-restricted-properties'].slice(1),
        { object: 'process', property: 'stdout', message: 'Only src/cli prints.' },
      ],
    },
  },
  // src/web: the dashboard runs in the browser (browser globals) and imports only
  // src/web, the SDK's environment-neutral channel bookkeeping
  // (src/api/client/channels.ts) and, for the shapes of the API's answers,
  // `import type` from src/api.
  // build.ts and serve.ts are its Node side.
  ...webBrowserCode(),
  {
    files: ['bench/**', 'scripts/**', 'src/cli/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
