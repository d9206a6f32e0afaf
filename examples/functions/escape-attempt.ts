/**
 * Tries to leave its sandbox in one of several ways and returns what it got. On an executor at
 * isolation `process` or `bwrap` every attempt ends in a typed error or in nothing useful.
 */
export default function escapeAttempt(technique: string): unknown {
  switch (technique) {
    case 'constructor-chain':
      // The classic escape from a `vm` context: a host function's Function constructor.
      return typeof setTimeout.constructor.constructor('return process')();
    case 'process-global':
      return typeof (globalThis as Record<string, unknown>)['process'];
    case 'prototype-pollution':
      (Object.prototype as Record<string, unknown>)['owned'] = true;
      return 'polluted';
    case 'spin':
      for (;;) {
        // Never returns: stopped at the function's timeout.
      }
    default:
      return `unknown technique ${technique}`;
  }
}
