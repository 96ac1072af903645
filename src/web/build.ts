// Builds the dashboard bundle: src/web/main.ts → app.js (esbuild), with
// style.css and index.html beside it. Used by scripts/build-web.js (install
// time) and by registerDashboard (at start, when the bundle is missing or
// older than its sources). Runs in Node, not in the browser.

import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export const WEB_SOURCE_DIR = dirname(fileURLToPath(import.meta.url));
export const WEB_DIST_DIR = resolve(WEB_SOURCE_DIR, '../../dist/web');

/** The files of a built bundle, by name. */
export type Bundle = Map<string, Uint8Array>;

/** Browser sources are every file here but the Node-side build and serve modules. */
const NODE_SIDE = new Set(['build.ts', 'serve.ts']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (!(dir === WEB_SOURCE_DIR && NODE_SIDE.has(name))) out.push(path);
  }
  return out;
}

/** Newest modification time of the browser sources (and of the API types they import). */
export function sourcesMtimeMs(sourceDir = WEB_SOURCE_DIR): number {
  const files = [
    ...sourceFiles(sourceDir),
    resolve(sourceDir, '../api/view.ts'),
    resolve(sourceDir, '../api/ws.ts'),
  ];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Bundles in memory (nothing written). */
export function buildBundle(sourceDir = WEB_SOURCE_DIR): Bundle {
  const result = buildSync({
    entryPoints: [join(sourceDir, 'main.ts')],
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    outfile: 'app.js',
    write: false,
    logLevel: 'silent',
  });
  const bundle: Bundle = new Map();
  for (const file of result.outputFiles) bundle.set(file.path.split(/[\\/]/).pop()!, file.contents);
  bundle.set('app.css', readFileSync(join(sourceDir, 'style.css')));
  bundle.set('index.html', readFileSync(join(sourceDir, 'index.html')));
  return bundle;
}

/**
 * Writes a bundle, one file at a time through a temporary name and a rename,
 * so a node starting beside another never reads a half-written file.
 */
export function writeBundle(bundle: Bundle, outDir = WEB_DIST_DIR): void {
  mkdirSync(outDir, { recursive: true });
  for (const [name, bytes] of bundle) {
    const tmp = join(outDir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, bytes);
    renameSync(tmp, join(outDir, name));
  }
}

/** The bundle files every build has. */
export const BUNDLE_FILES = ['index.html', 'app.js', 'app.css'] as const;

/** Reads a written bundle; undefined when a file is missing or older than the sources. */
export function readFreshBundle(
  outDir = WEB_DIST_DIR,
  sourceDir = WEB_SOURCE_DIR,
): Bundle | undefined {
  const newestSourceMs = sourcesMtimeMs(sourceDir);
  const bundle: Bundle = new Map();
  for (const name of BUNDLE_FILES) {
    const path = join(outDir, name);
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
    } catch {
      return undefined;
    }
    if (mtimeMs < newestSourceMs) return undefined;
    bundle.set(name, readFileSync(path));
  }
  return bundle;
}

/** The built bundle: from dist/web when fresh, else built now and written there. */
export function ensureBundle(outDir = WEB_DIST_DIR, sourceDir = WEB_SOURCE_DIR): Bundle {
  const fresh = readFreshBundle(outDir, sourceDir);
  if (fresh !== undefined) return fresh;
  const bundle = buildBundle(sourceDir);
  try {
    writeBundle(bundle, outDir);
  } catch {
    // dist/web is only a cache: on a read-only install the node serves the bundle it just built.
  }
  return bundle;
}
