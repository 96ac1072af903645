// The OpenAPI 3 document, generated from the route definitions (routes.ts):
// served at GET /openapi.json, so third-party tools can generate clients.

import { OPENAPI_PATH, ROUTE_ERRORS, WS_PATH, errorSchema, routes } from './routes.ts';
import type { ErrorAnswers, RouteDef } from './routes.ts';
import type { JsonSchema } from './schema.ts';

export const API_VERSION = '1.0.0';

/** How an integer in a path or query must be written. */
export const INTEGER_TEXT = 'Plain decimal digits: no sign, exponent, hex prefix or spaces.';

/** `/v1/book/:instrument` → `/v1/book/{instrument}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(def: RouteDef): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, s] of [
    ['path', def.params],
    ['query', def.query],
  ] as const) {
    if (s === undefined) continue;
    const props = (s.json.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((s.json.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      out.push({
        name,
        in: where,
        required: where === 'path' || required.has(name),
        // The server refuses what JSON Schema's integer would let a parser coerce (check.ts).
        ...(schema.type === 'integer' ? { description: INTEGER_TEXT } : {}),
        schema,
      });
    }
  }
  return out;
}

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** Each error answer a route gives (routes.ts), 429 with its Retry-After header. */
function errorResponses(answers: ErrorAnswers): JsonSchema {
  const out: JsonSchema = {};
  for (const [status, description] of Object.entries(answers)) {
    const response: JsonSchema = errorResponse(description);
    if (status === '429') {
      response.headers = {
        'Retry-After': {
          description: 'Whole seconds to wait before the next request',
          schema: { type: 'integer', minimum: 1 },
        },
      };
    }
    out[status] = response;
  }
  return out;
}

function operation(name: string, def: RouteDef): JsonSchema {
  const op: JsonSchema = {
    operationId: name,
    summary: def.summary,
    parameters: parameters(def),
    responses: {
      '200': { description: 'OK', content: { 'application/json': { schema: def.response.json } } },
      ...errorResponses({ ...ROUTE_ERRORS, ...def.errors }),
    },
  };
  if (def.body !== undefined) {
    const content: JsonSchema = { 'application/json': { schema: def.body.json } };
    if (def.rawBody === true) {
      content['application/octet-stream'] = { schema: { type: 'string', format: 'binary' } };
    }
    op.requestBody = { required: true, content };
  }
  return op;
}

export function openApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const [name, def] of Object.entries(routes) as [string, RouteDef][]) {
    const path = openApiPath(def.path);
    (paths[path] ??= {})[def.method.toLowerCase()] = operation(name, def);
  }
  paths[OPENAPI_PATH] = {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      responses: {
        '200': { description: 'OpenAPI 3 document' },
        ...errorResponses(ROUTE_ERRORS),
      },
    },
  };
  paths[WS_PATH] = {
    get: {
      operationId: 'websocket',
      summary: 'WebSocket upgrade: subscriptions to book, trades, ticker, account and blocks',
      responses: {
        '101': { description: 'Switching protocols (see docs/api.md, "WebSocket")' },
        ...errorResponses({
          ...ROUTE_ERRORS,
          429:
            'RateLimited (retryAfterMs, and a Retry-After header), or TooManyConnections: ' +
            'as many open from this address as WS_CONNECTIONS_PER_IP_MAX',
        }),
        '426': errorResponse('UpgradeRequired: not a WebSocket upgrade'),
      },
    },
  };
  return {
    openapi: '3.0.3',
    info: {
      title: 'Zomma API',
      version: API_VERSION,
      description:
        'HTTP API of a Zomma node. Money is a decimal string of quote units (6 decimals), ' +
        'prices integer ticks, sizes integer lots, times ms of block time.',
    },
    paths,
    components: { schemas: { Error: errorSchema.json } },
  };
}
