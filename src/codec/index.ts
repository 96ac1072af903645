export * from './wire.ts';
export * from './schema.ts';
