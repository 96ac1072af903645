// The stress tool's surface (docs/stress.md): scenarios, generated states,
// runs through the real state machine, and their reports.
export * from './scenario.ts';
export * from './generate.ts';
export * from './run.ts';
export * from './report.ts';
export * from './state_file.ts';
