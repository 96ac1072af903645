// Which build this is: the package version, and a digest of the source tree
// (every file under src/, by path). Operators compare both to know whether
// their validators run the same code (docs/operations.md, "When a node halts
// on an appHash mismatch"): the version alone is the same for every change
// made between two releases, and an execution change there halts the
// validators that did not take it. With them, the execution version (which
// rules of execution it runs) and the peer protocol's wire version: peers
// refuse each other when either differs (docs/operations.md, "Upgrades").

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildVersionsView } from '../api/view.ts';
import { EXECUTION_VERSION } from '../exchange/version.ts';
import { PROTOCOL_VERSION } from './transport/version.ts';

const SOURCE_DIR = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
/** Hex digits of the source digest shown (64 bits: enough to tell builds apart by eye). */
const SOURCE_DIGEST_HEX = 16;

export interface BuildInfo {
  readonly version: string;
  /** SHA-256 of the source tree, its first SOURCE_DIGEST_HEX hex digits; 'unknown' if unreadable. */
  readonly source: string;
  /** EXECUTION_VERSION: bumped by every change of execution. */
  readonly executionVersion: number;
  /** The peer protocol's wire version (PROTOCOL_VERSION). */
  readonly wireVersion: number;
}

let cached: BuildInfo | null = null;
let versions: BuildVersionsView | null = null;

export function buildInfo(): BuildInfo {
  const { version, executionVersion, wireVersion } = buildVersions();
  cached ??= { version, source: sourceDigest(SOURCE_DIR), executionVersion, wireVersion };
  return cached;
}

/**
 * What GET /v1/status shows of the build: buildInfo() without the source
 * digest, which reads every source file.
 */
export function buildVersions(): BuildVersionsView {
  versions ??= {
    version: (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version,
    executionVersion: EXECUTION_VERSION,
    wireVersion: PROTOCOL_VERSION,
  };
  return versions;
}

/**
 * SHA-256 over each file's path (relative, '/'-separated), size and bytes, in
 * path order; 'unknown' when some of it cannot be read (a stray file of
 * another user's, say): it only informs, and must not stop a node's start.
 */
export function sourceDigest(dir: string): string {
  const hash = createHash('sha256');
  try {
    for (const path of filesUnder(dir)) {
      const bytes = readFileSync(path);
      const name = relative(dir, path).split(/[\\/]/).join('/');
      hash.update(`${name}\0${bytes.length}\0`);
      hash.update(bytes);
    }
  } catch {
    return 'unknown';
  }
  return hash.digest('hex').slice(0, SOURCE_DIGEST_HEX);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}
