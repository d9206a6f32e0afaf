import { describe, expect, it, vi } from 'vitest';
import { ErrorCode, LfaasError } from '../client/index.js';
import { EXIT_OF, ExitCode, errorDocument, exitCodeOf, jsonRequested, reportFailure } from './exit-codes.js';

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

  it("a function's stack comes with its error: frames on stderr (escaped), a `stack` field with --json", () => {
    const error = new LfaasError(ErrorCode.EXEC_USER_ERROR, 'RangeError: cannot divide by zero', { remoteStack: 'RangeError: cannot divide by zero\n    at nonZero (divide.ts:8:28)\n    at main (divide.ts:15:14\u001b[2J)' });
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    const exitCode = process.exitCode;
    try {
      reportFailure(error, false);
      expect(written.join('')).toBe('lfaas: EXEC_USER_ERROR: RangeError: cannot divide by zero\n    at nonZero (divide.ts:8:28)\n    at main (divide.ts:15:14\\u001b[2J)\n');
      expect(process.exitCode).toBe(ExitCode.FUNCTION_ERROR);
      written.length = 0;
      reportFailure(error, true);
      expect(JSON.parse(written.join(''))).toEqual({ error: { code: 'EXEC_USER_ERROR', message: 'RangeError: cannot divide by zero', retryable: false, stack: error.remoteStack } });
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
      process.exitCode = exitCode;
    }
  });
});
