// The consensus core's public surface: Tendermint as a pure event handler
// (docs/protocol.md). The simulator and the node drive it through these.
export * from './types.ts';
export * from './ports.ts';
export * from './codec.ts';
export * from './replica.ts';
export * from './validators.ts';
