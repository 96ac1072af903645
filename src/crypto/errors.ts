// The crypto layer's typed errors. Codes are stable: the CLI, the API and the
// docs name them (docs/crypto.md).

import { ZommaError } from '../lib/errors.ts';

export type CryptoErrorCode =
  | 'BadPublicKey'
  | 'BadKeyFile'
  | 'KeyFileTooOpen'
  | 'BadAddress'
  | 'BadChainId'
  | 'VerifyQueueFull';

export class CryptoError extends ZommaError<CryptoErrorCode> {}
