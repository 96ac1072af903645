// Typed errors: every rejection carries a stable code, the same on the wire, in
// the SDK and in the docs (STYLE habit 9).

export class ZommaError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = code;
  }
}
