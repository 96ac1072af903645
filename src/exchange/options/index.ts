// Option marks from the oracle's smiles, and scenario margin (docs/derivatives.md).
export * from './svi.ts';
export * from './mark.ts';
export * from './margin.ts';
