// Builds the dashboard bundle into dist/web (src/web/build.ts does the work;
// tsx loads it). Meant for `postinstall`; a node also rebuilds at start when
// the bundle is missing or stale, so running this is an optimisation.
import { tsImport } from 'tsx/esm/api';

const { buildBundle, writeBundle, WEB_DIST_DIR } = await tsImport(
  '../src/web/build.ts',
  import.meta.url,
);
const bundle = buildBundle();
writeBundle(bundle);
let bytes = 0;
for (const file of bundle.values()) bytes += file.length;
console.log(`dashboard: ${bundle.size} files, ${bytes} bytes → ${WEB_DIST_DIR}`);
