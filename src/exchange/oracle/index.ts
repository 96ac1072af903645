// Validator oracle: observations in vote extensions and their aggregation
// (docs/derivatives.md, "Oracle").
export * from './observation.ts';
export * from './aggregate.ts';
