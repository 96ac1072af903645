// GET /v1/status names the build a node runs: its package version, its
// execution version and its peer protocol's wire version, the same values
// `zomma version`, the start line and the metrics port's /status show. The
// node's read model (ChainView) answers them, through the real API server and
// the SDK, and the served OpenAPI document declares them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ZommaClient } from '../../src/api/client/index.ts';
import { startApiServer } from '../../src/api/server.ts';
import { EXECUTION_VERSION } from '../../src/exchange/version.ts';
import { buildInfo } from '../../src/node/build_info.ts';
import { PROTOCOL_VERSION } from '../../src/node/transport/version.ts';
import { Harness } from '../exchange/helpers.ts';
import { btcDailyGenesis, standInView } from '../node/view_fixtures.ts';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

test("GET /v1/status shows the build's package, execution and wire versions", async () => {
  const h = new Harness(btcDailyGenesis(), { checkInvariants: false });
  const { view, deliver } = standInView(h);
  deliver(h.block([]), []);
  const server = await startApiServer({ view });
  try {
    const client = new ZommaClient(server.url);
    const status = await client.status();
    assert.equal(status.executionVersion, EXECUTION_VERSION);
    assert.equal(status.wireVersion, PROTOCOL_VERSION);
    assert.equal(status.version, PACKAGE_VERSION);
    // The same as the node's other places show (`zomma version`, metrics /status).
    const { version, executionVersion, wireVersion } = buildInfo();
    assert.deepEqual(
      {
        version: status.version,
        executionVersion: status.executionVersion,
        wireVersion: status.wireVersion,
      },
      { version, executionVersion, wireVersion },
    );

    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<
        string,
        Record<
          string,
          {
            responses: Record<
              string,
              {
                content: Record<
                  string,
                  { schema: { required: string[]; properties: Record<string, { type: string }> } }
                >;
              }
            >;
          }
        >
      >;
    };
    const schema =
      doc.paths['/v1/status']!.get!.responses['200']!.content['application/json']!.schema;
    for (const [field, type] of [
      ['version', 'string'],
      ['executionVersion', 'integer'],
      ['wireVersion', 'integer'],
    ] as const) {
      assert.equal(schema.properties[field]?.type, type, field);
      assert.ok(schema.required.includes(field), `${field} is required`);
    }
  } finally {
    await server.close();
    view.close();
  }
});
