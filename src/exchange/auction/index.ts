// Circuit breakers: price bands, open-interest caps, price monitoring and call
// auctions (docs/derivatives.md). Market halts are governance (../governance.ts).
export * from './bands.ts';
export * from './call.ts';
export * from './call_state.ts';
export * from './monitor.ts';
export * from './uncross.ts';
