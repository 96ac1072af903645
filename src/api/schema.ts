// A few JSON Schema builders that carry their TypeScript type, so each route's
// schema is written once and its types follow from it: the server validates
// with the JSON Schema, the SDK and CLI type their calls with the type, and the
// OpenAPI document is the same JSON Schema.

export type JsonSchema = Record<string, unknown>;

export interface Schema<T> {
  readonly json: JsonSchema;
  readonly optional: boolean;
  /** Phantom: the TypeScript type of a value the schema accepts. */
  readonly type?: T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Props = Record<string, Schema<unknown>>;
type OptionalKeys<P extends Props> = {
  [K in keyof P]: P[K] extends { optional: true } ? K : never;
}[keyof P];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<P extends Props> = Simplify<
  { [K in Exclude<keyof P, OptionalKeys<P>>]: Infer<P[K]> } & {
    [K in OptionalKeys<P>]?: Infer<P[K]>;
  }
>;

function schema<T>(json: JsonSchema): Schema<T> & { optional: false } {
  return { json, optional: false };
}

export function string(options: { pattern?: string; maxLength?: number; minLength?: number } = {}) {
  return schema<string>({ type: 'string', ...options });
}

export function integer(options: { minimum?: number; maximum?: number } = {}) {
  return schema<number>({ type: 'integer', ...options });
}

export function boolean() {
  return schema<boolean>({ type: 'boolean' });
}

export function literal<const T extends string>(values: readonly T[]) {
  return schema<T>({ type: 'string', enum: [...values] });
}

export function array<T>(item: Schema<T>, options: { maxItems?: number } = {}) {
  return schema<T[]>({ type: 'array', items: item.json, ...options });
}

/** A fixed pair of integers, e.g. a price level [priceTicks, sizeLots]. */
export function integerPair() {
  return schema<[number, number]>({
    type: 'array',
    items: { type: 'integer' },
    minItems: 2,
    maxItems: 2,
  });
}

export function object<P extends Props>(props: P, options: { description?: string } = {}) {
  const required = Object.keys(props).filter((k) => !props[k]!.optional);
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(props)) properties[k] = v.json;
  return schema<ObjectOf<P>>({
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
    ...options,
  });
}

/** A value of either shape (JSON Schema anyOf): a union of two views. */
export function either<A, B>(a: Schema<A>, b: Schema<B>) {
  return schema<A | B>({ anyOf: [a.json, b.json] });
}

/** A value or `null` (a WebSocket snapshot of nothing yet: no block, no account). */
export function nullable<T>(inner: Schema<T>) {
  return schema<T | null>({ anyOf: [inner.json, { type: 'null' }] });
}

export function optional<T>(inner: Schema<T>): Schema<T> & { optional: true } {
  return { json: inner.json, optional: true };
}

export function describe<S extends Schema<unknown>>(s: S, description: string): S {
  return { ...s, json: { ...s.json, description } };
}
