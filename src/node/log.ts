// The node's logger port: pino's shape (an object of fields, then a message),
// so the runtime passes a pino logger and tests pass nothing.

export interface Log {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  /** A halt the operator must act on before any restart (a data directory replaced under the node). */
  fatal(fields: object, message: string): void;
}

const ignore = (): void => {};

export const silentLog: Log = {
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  fatal: ignore,
};
