// XenAPI failures: a code from the datamodel's error list plus string parameters.
import { errorParams, type ErrorCode } from '../datamodel/errors.js';

export class XenApiError extends Error {
  readonly code: string;
  readonly params: string[];
  constructor(code: ErrorCode | `SR_BACKEND_FAILURE_${number}`, params: ReadonlyArray<unknown> = []) {
    super(`${code}(${params.join(', ')})`);
    this.code = code;
    this.params = params.map((p) => String(p));
  }
  /** The `ErrorDescription` array: code first, then the parameters, all strings. */
  get description(): string[] {
    return [this.code, ...this.params];
  }
}

/** Throws a XenAPI failure; the code is checked against the datamodel's list at compile time. */
export function fail(code: ErrorCode, ...params: unknown[]): never {
  throw new XenApiError(code, params);
}

/** Maps any thrown value to a XenAPI failure, keeping the message of unexpected ones. */
export function toXenApiError(e: unknown): XenApiError {
  if (e instanceof XenApiError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new XenApiError('INTERNAL_ERROR', [msg]);
}

export function isKnownCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorParams, code);
}
