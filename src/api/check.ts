// A route's input checked against its schema, with the validator and options
// the server's routes use (fastify's Ajv), and refused as the server refuses
// it: the SDK checks its arguments before a request leaves, so a bad one is
// the node's own BadRequest (same field, same message) without a round trip.

import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { ADDRESS_PATTERN, HASH_PATTERN, INSTRUMENT_PATTERN } from './routes.ts';
import type { RouteDef } from './routes.ts';
import type { JsonSchema } from './schema.ts';

/** Unknown fields are refused, not silently dropped; query numbers are coerced from text. */
export const AJV_OPTIONS = {
  removeAdditional: false,
  coerceTypes: true,
  allErrors: false,
} as const;

/**
 * A JSON body's types are its own: nothing is coerced, so `{ "tx": 12 }` is
 * refused as a number where a string belongs, never read as the hex text "12"
 * (nor `null` as an empty string). Only the path and the query, which are
 * text, are read as numbers.
 */
export const AJV_BODY_OPTIONS = { ...AJV_OPTIONS, coerceTypes: false } as const;

/** The query of a route that takes none: any parameter is refused, as unknown fields are elsewhere. */
export const NO_QUERY: JsonSchema = { type: 'object', properties: {}, additionalProperties: false };

/** What Ajv (and fastify's `error.validation`) says of the first violation. */
export interface SchemaViolation {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** What the patterns of routes.ts ask for, in words: Ajv would print the expression. */
const PATTERN_WORDS: Record<string, string> = {
  [HASH_PATTERN]: 'be 64 lower-case hex digits',
  [ADDRESS_PATTERN]: 'be 0x and 40 hex digits',
  [INSTRUMENT_PATTERN]: 'be an instrument name: A-Z and 0-9 between single dashes (BTC-PERPETUAL)',
};

/** Characters of a client's path, field or channel name an answer shows. */
const NAME_SHOWN_CHARS = 128;

/**
 * A name the client wrote (a path, an unknown field, a channel), cut short:
 * an answer does not echo a long request back (a query key may be
 * kilobytes). Every name the API knows is shorter, so a known one is shown
 * whole.
 */
export function shownName(name: string): string {
  return name.length <= NAME_SHOWN_CHARS ? name : `${name.slice(0, NAME_SHOWN_CHARS)}…`;
}

/** Where the problem is (`querystring/depth`) and a message that names it. */
export function refusalOf(
  context: string,
  first: SchemaViolation | undefined,
): { field: string; message: string } {
  const where = `${context}${first?.instancePath ?? ''}`;
  // Name the unknown field itself: Ajv's message says only that there is one.
  const unknown = first?.params?.additionalProperty;
  if (first?.keyword === 'additionalProperties' && typeof unknown === 'string') {
    const field = `${where}/${shownName(unknown)}`;
    return { field, message: `${field} is not a known field` };
  }
  const pattern = first?.params?.pattern;
  const words =
    first?.keyword === 'pattern' && typeof pattern === 'string'
      ? PATTERN_WORDS[pattern]
      : undefined;
  if (words !== undefined) return { field: where, message: `${where} must ${words}` };
  // Name the missing field, as an unknown one is named: Ajv says "must have required property 'tx'".
  const missing = first?.params?.missingProperty;
  if (first?.keyword === 'required' && typeof missing === 'string') {
    const field = `${where}/${missing}`;
    return { field, message: `${field} is required` };
  }
  // Name the values it takes: Ajv says only "one of the allowed values".
  const allowed = first?.params?.allowedValues;
  if (first?.keyword === 'enum' && Array.isArray(allowed)) {
    const values = allowed.map((v) => JSON.stringify(v)).join(', ');
    return { field: where, message: `${where} must be one of ${values}` };
  }
  return { field: where, message: `${where} ${first?.message ?? 'is invalid'}` };
}

/** How an integer in a query or a path is written: Ajv's coercion alone would take `0x10`, `1e2`, `+5`, ` 7`. */
const DECIMAL_DIGITS = /^[0-9]+$/;

/**
 * The first integer field of a query or path parameters (text, as parsed from
 * the URL) written as anything but plain decimal digits, or with more digits
 * than a number holds. Checked before the schema, whose coercion turns any
 * text Number() reads into a number.
 */
export function looseIntegerOf(
  context: string,
  schema: JsonSchema | undefined,
  value: unknown,
): { field: string; message: string } | undefined {
  if (schema === undefined || typeof value !== 'object' || value === null) return undefined;
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, property] of Object.entries(properties)) {
    if (property.type !== 'integer' || !Object.hasOwn(value, name)) continue;
    const text = (value as Record<string, unknown>)[name];
    if (typeof text !== 'string') continue;
    const field = `${context}/${name}`;
    if (!DECIMAL_DIGITS.test(text)) {
      return { field, message: `${field} must be plain decimal digits` };
    }
    // Digits past Number's range coerce to Infinity, which Ajv checks against no
    // bound (its minimum and maximum skip a number that is not finite).
    if (!Number.isFinite(Number(text))) {
      const maximum = property.maximum ?? Number.MAX_SAFE_INTEGER;
      return { field, message: `${field} must be <= ${String(maximum)}` };
    }
  }
  return undefined;
}

/**
 * The first field a query names more than once (`?depth=5&depth=6`), among
 * those its schema takes: the URL parser makes it a list, which the schema
 * would refuse as "must be integer", naming a type the client did write.
 */
export function repeatedFieldOf(
  context: string,
  schema: JsonSchema | undefined,
  value: unknown,
): { field: string; message: string } | undefined {
  if (schema === undefined || typeof value !== 'object' || value === null) return undefined;
  for (const name of Object.keys((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    if (!Object.hasOwn(value, name) || !Array.isArray((value as Record<string, unknown>)[name])) {
      continue;
    }
    const field = `${context}/${name}`;
    return { field, message: `${field} is given more than once` };
  }
  return undefined;
}

/** Where a schema applies: the path's parameters, the query, or a JSON body. */
export type InputPart = 'params' | 'querystring' | 'body';

const ajvs = new Map<boolean, Ajv>();
const compiled = {
  text: new WeakMap<object, ValidateFunction>(),
  body: new WeakMap<object, ValidateFunction>(),
};

/**
 * Where a schema (or a schema inside it) gives a `default`, as a JSON
 * pointer, or undefined. The validators here do not apply defaults (Ajv's
 * `useDefaults` is off, so that checking a request never changes it): a
 * default would be documented in the OpenAPI document and silently not
 * happen, so a schema that has one is refused when compiled. A field named
 * "default" (a key of `properties`) is a name, not the keyword, and the
 * values of `const`, `enum` and `examples` are data.
 */
export function defaultIn(schema: unknown, at = ''): string | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  if (Array.isArray(schema)) {
    for (let i = 0; i < schema.length; i++) {
      const found = defaultIn(schema[i], `${at}/${i}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'default') return `${at}/default`;
    // Values, not schemas: a "default" inside them is data.
    if (key === 'const' || key === 'enum' || key === 'examples' || key === 'example') continue;
    if (key === 'properties' || key === 'patternProperties' || key === '$defs') {
      if (typeof value !== 'object' || value === null) continue;
      for (const [name, sub] of Object.entries(value)) {
        const found = defaultIn(sub, `${at}/${key}/${name}`);
        if (found !== undefined) return found;
      }
      continue;
    }
    const found = defaultIn(value, `${at}/${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The validator of one part of a request: the SDK's check, the server's
 * routes (its validator compiler) and the WebSocket's `submit` all use these,
 * so they refuse alike. A schema with a `default` is refused (defaultIn).
 */
export function validatorOf(part: InputPart | string, schema: object): ValidateFunction {
  const body = part === 'body';
  const cache = body ? compiled.body : compiled.text;
  let validate = cache.get(schema);
  if (validate === undefined) {
    const withDefault = defaultIn(schema);
    if (withDefault !== undefined) {
      throw new Error(
        `schema gives a default at ${withDefault}: defaults are not applied here ` +
          '(Ajv useDefaults is off); give the value in the handler instead',
      );
    }
    let ajv = ajvs.get(body);
    if (ajv === undefined) {
      ajv = new Ajv(body ? AJV_BODY_OPTIONS : AJV_OPTIONS);
      ajvs.set(body, ajv);
    }
    validate = ajv.compile(schema);
    cache.set(schema, validate);
  }
  return validate;
}

/**
 * Path parameters or a query as the request carries them, text (String(v)),
 * as the SDK writes them into the URL: the path's parameters whether given or
 * not, a query field only when defined. The node reads that text, so a value
 * is refused as it refuses the text (`1.5`: not plain decimal digits).
 */
function asSent(value: unknown, names: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const text: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) text[k] = String(v);
  for (const name of names) text[name] = String((value as Record<string, unknown>)[name]);
  return text;
}

/**
 * The first part of a request that breaks its route's schema, in the order
 * the server finds it: an integer not written as plain digits (path, then
 * query), then the schemas of the path parameters, a JSON body and the query
 * (absent: none may be given).
 */
export function checkRouteInput(
  route: RouteDef,
  input: { params?: unknown; query?: unknown; body?: unknown },
): { field: string; message: string } | undefined {
  const pathNames = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  const params = asSent(input.params ?? {}, pathNames);
  const query = asSent(input.query ?? {}, []);
  const querySchema = route.query?.json ?? NO_QUERY;
  const loose =
    looseIntegerOf('params', route.params?.json, params) ??
    looseIntegerOf('querystring', querySchema, query);
  if (loose !== undefined) return loose;
  const parts: [InputPart, JsonSchema | undefined, unknown][] = [
    ['params', route.params?.json, params],
    ['body', route.body?.json, input.body],
    ['querystring', querySchema, query],
  ];
  for (const [context, schema, value] of parts) {
    if (schema === undefined || value === undefined || value instanceof Uint8Array) continue;
    // A copy: coercion writes into what it checks.
    const copy = typeof value === 'object' && value !== null ? { ...value } : value;
    const validate = validatorOf(context, schema);
    if (!validate(copy)) return refusalOf(context, validate.errors?.[0]);
  }
  return undefined;
}
