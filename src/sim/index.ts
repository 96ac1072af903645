// The simulator's public surface (docs/simulator.md): run one seed or a swarm,
// draw a height's timeline, and report a topology's latency.
export * from './config.ts';
export * from './simulator.ts';
export * from './checkers.ts';
export * from './topology.ts';
export * from './network.ts';
export * from './crypto.ts';
export * from './app.ts';
export * from './byzantine.ts';
export * from './timeline.ts';
export * from './latency.ts';
export * from './swarm.ts';
