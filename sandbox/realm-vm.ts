/**
 * The trusted realm (isolation level `none`): a `node:vm` context per function version, in a
 * worker thread of the executor. Not a wall: the context's globals come from the host realm, so
 * determined code reaches the executor's process. For one trusted owner's development only; the
 * executor warns when it runs at this level.
 */
import { Script, createContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { Realm } from './runtime.js';

export const vmRealm: Realm = {
  evaluate(functionId, code, globals, timeoutMs) {
    const module = { exports: {} as unknown };
    const context = createContext({ ...globals, module, exports: module.exports });
    const script = new Script(`(function (module, exports) {\n${code}\n})(module, module.exports);`, { filename: `${functionId}.js` });
    const startedMs = performance.now();
    try {
      script.runInContext(context, { timeout: timeoutMs });
    } catch (error) {
      // A synchronous loop cut by the vm timeout, told by the clock (the error is made in the
      // function's realm, where a module can make one of the same shape).
      if (performance.now() - startedMs >= timeoutMs - 1) return { timedOut: true };
      throw error;
    }
    return { exports: module.exports };
  },
  harden(value) {
    return value;
  },
};
