import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../client/index.js';
import { EXIT_OF, ExitCode, errorDocument, exitCodeOf, jsonRequested } from './exit-codes.js';

describe('exit codes', () => {
  it('every error code has its exit class in the table', () => {
    const missing = Object.values(ErrorCode).filter((code) => EXIT_OF[code] === undefined);
    expect(missing).toEqual([]);
  });

  it('the classes: not found 3, refused 4, unavailable 5, function error 6', () => {
    expect(exitCodeOf(ErrorCode.SCHED_FUNCTION_NOT_FOUND)).toBe(ExitCode.NOT_FOUND);
    expect(exitCodeOf(ErrorCode.KVS_KEY_NOT_FOUND)).toBe(ExitCode.NOT_FOUND);
    expect(exitCodeOf(ErrorCode.UNAUTHORISED)).toBe(ExitCode.REFUSED);
    expect(exitCodeOf(ErrorCode.TRANSPORT_NO_CLUSTER)).toBe(ExitCode.UNAVAILABLE);
    expect(exitCodeOf(ErrorCode.SCHED_NO_CAPACITY)).toBe(ExitCode.UNAVAILABLE);
    expect(exitCodeOf(ErrorCode.EXEC_USER_ERROR)).toBe(ExitCode.FUNCTION_ERROR);
    expect(exitCodeOf(ErrorCode.EXEC_TIMEOUT)).toBe(ExitCode.FUNCTION_ERROR);
    expect(exitCodeOf(ErrorCode.INTERNAL)).toBe(ExitCode.INTERNAL);
  });

  it('--json is seen before a `--` only; a failure document parses', () => {
    expect(jsonRequested(['node', 'lfaas', 'call', 'f', '--json'])).toBe(true);
    expect(jsonRequested(['node', 'lfaas', 'call', 'f', '--', '--json'])).toBe(false);
    expect(JSON.parse(errorDocument('UNAUTHORISED', 'no token', false))).toEqual({ error: { code: 'UNAUTHORISED', message: 'no token', retryable: false } });
  });
});
