import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { errorCodeFromWire, errorCodeToWire, errorFromWireMessage, errorToWire, wireErrorNames } from './errors-wire.js';
import { pb } from './messages.js';

describe('error codes on the wire', () => {
  it('the proto enum and the catalogue hold exactly the same codes', () => {
    expect(wireErrorNames().sort()).toEqual(Object.values(ErrorCode).sort());
    expect(pb.ErrorCode.ERROR_CODE_UNSPECIFIED).toBe(0);
  });

  it('every code maps to the wire number of the same name and back', () => {
    for (const code of Object.values(ErrorCode)) {
      const wire = errorCodeToWire(code);
      expect(wire).toBe((pb.ErrorCode as unknown as Record<string, number>)[code]);
      expect(errorCodeFromWire(wire)).toBe(code);
    }
  });

  it('unspecified and unknown wire numbers become INTERNAL', () => {
    const known = new Set(Object.values(pb.ErrorCode as unknown as Record<string, number>).filter((value) => value !== 0));
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).filter((value) => !known.has(value)), (value) => {
        expect(errorCodeFromWire(value)).toBe(ErrorCode.INTERNAL);
        const rebuilt = errorFromWireMessage({ code: value, message: 'boom' });
        expect(rebuilt.code).toBe(ErrorCode.INTERNAL);
        expect(rebuilt.message).toContain(String(value));
        expect(rebuilt.message).toContain('boom');
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('an LfaasError survives the wire with its code and message', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(ErrorCode)), fc.string(), (code, message) => {
        const wire = pb.Error.decode(pb.Error.encode(errorToWire(new LfaasError(code, message))).finish());
        const rebuilt = errorFromWireMessage(wire);
        expect({ code: rebuilt.code, message: rebuilt.message }).toEqual({ code, message });
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('errorToWire normalises anything thrown', () => {
    expect(errorFromWireMessage(errorToWire(new TypeError('bad'))).code).toBe(ErrorCode.INTERNAL);
    expect(errorFromWireMessage(errorToWire('text')).message).toContain('text');
    expect(errorFromWireMessage({}).code).toBe(ErrorCode.INTERNAL);
  });
});
