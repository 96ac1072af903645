// The exchange state machine (docs/exchange.md): what the node, the simulator
// and the API need.
export { Exchange, BlockError } from './exchange.ts';
export { EXECUTION_VERSION } from './version.ts';
export type { Block, ExchangeOptions, OracleVotes } from './exchange.ts';
export {
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_PREVIOUS,
  SnapshotFormatError,
  encodeSnapshot,
  decodeSnapshot,
  readSnapshot,
  writeSnapshot,
} from './snapshot.ts';
export {
  devnetGenesis,
  DEVNET_ORACLE,
  oracleParamsOf,
  validateGenesis,
  encodeGenesis,
  decodeGenesis,
  genesisCodec,
  GenesisError,
  quotePerTickLot,
} from './genesis.ts';
export type { Genesis, MarketParams, FeeTier, OracleGenesis, ValidatorInfo } from './genesis.ts';
export { REJECT_CODES } from './errors.ts';
export type { RejectCode } from './errors.ts';
export type {
  ActionResult,
  BlockResult,
  ExchangeEvent,
  Fill,
  OrderOutcome,
  TxResult,
  ValidatorUpdate,
} from './results.ts';
export { checkInvariants } from './invariants.ts';
export {
  equityQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
  freeCollateralQuote,
} from './margin.ts';
export { applyEvidence, jail } from './governance.ts';
export type { Offence } from './governance.ts';
export { SLASH_PPM_DEFAULT, slashPpmOf } from './genesis.ts';
export { PPM } from './units.ts';
