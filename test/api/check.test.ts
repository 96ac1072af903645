// The request validators (src/api/check.ts): a schema with a `default` is
// refused when compiled, since the validators never apply one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultIn, validatorOf } from '../../src/api/check.ts';
import { routes, wsSubmitSchema } from '../../src/api/routes.ts';

test('a schema that gives a default is refused when compiled, naming where', () => {
  const schema = {
    type: 'object',
    properties: { depth: { type: 'integer', default: 20 } },
    additionalProperties: false,
  };
  assert.equal(defaultIn(schema), '/properties/depth/default');
  assert.throws(
    () => validatorOf('querystring', schema),
    /default at \/properties\/depth\/default: defaults are not applied here/,
  );
  // Nested under a list keyword as well.
  assert.equal(
    defaultIn({ anyOf: [{ type: 'string' }, { type: 'integer', default: 1 }] }),
    '/anyOf/1/default',
  );
});

test('a field named "default" is a name, not the keyword', () => {
  const schema = {
    type: 'object',
    properties: { default: { type: 'string' } },
    required: ['default'],
    additionalProperties: false,
  };
  assert.equal(defaultIn(schema), undefined);
  // Nor is a "default" inside the data of const, enum or examples.
  assert.equal(
    defaultIn({ const: { default: 1 }, enum: [{ default: 2 }], examples: [{ default: 3 }] }),
    undefined,
  );
  const validate = validatorOf('body', schema);
  assert.equal(validate({ default: 'x' }), true);
  assert.equal(validate({ default: 1 }), false);
});

test('no route schema and not the WebSocket submit gives a default', () => {
  for (const [name, def] of Object.entries(routes)) {
    for (const part of ['params', 'query', 'body', 'response'] as const) {
      const schema = def[part];
      if (schema !== undefined) assert.equal(defaultIn(schema.json), undefined, `${name} ${part}`);
    }
  }
  assert.equal(defaultIn(wsSubmitSchema.json), undefined);
});
