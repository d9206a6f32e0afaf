/**
 * The sandbox realm: Hardened JavaScript (`ses`). `lockdown()` freezes every intrinsic of the
 * process and tames the ones that lead out (`Function.prototype.constructor` and its async and
 * generator kin no longer evaluate code in the start compartment; `Error.prepareStackTrace`
 * cannot be set from user code); each function version then gets a `Compartment` of its own, whose
 * global object holds only the language and the globals the runtime made (sandbox/globals.ts),
 * hardened. Nothing of Node (`process`, `require`, `Buffer`, the module system) is reachable.
 *
 * Import this module only in a sandbox process: `lockdown()` changes the whole process.
 */
import 'ses';
import type { Realm } from './runtime.js';

/** Freezes the process's intrinsics; once, before any other code of the runtime runs. */
export function lockdownProcess(): void {
  lockdown({
    // Stacks stay readable to the function that threw (its caller gets them as text).
    errorTaming: 'unsafe',
    stackFiltering: 'concise',
    // Assigning `constructor`, `toString`... on an object whose prototype is frozen still works.
    overrideTaming: 'moderate',
    consoleTaming: 'unsafe',
    // Node's domain module would reach promises' internals; the runtime never loads it.
    domainTaming: 'safe',
  });
}

export const sesRealm: Realm = {
  evaluate(functionId, code, globals) {
    // The start compartment's Date and Math (a compartment's own have no clock and no
    // randomness), and the float arrays ses leaves out of compartments (NaN bit patterns are not
    // deterministic; functions need them, the lattice library's codec among them). All frozen.
    const endowments: Record<string, unknown> = { Date, Math, Float32Array, Float64Array };
    for (const [name, value] of Object.entries(globals)) endowments[name] = harden(value as object);
    const compartment = new Compartment({ globals: endowments, __options__: true, name: functionId });
    const factory = compartment.evaluate(`(function (module, exports) {\n${code}\n})\n//# sourceURL=${functionId.replace(/[^\w@.-]/g, '_')}.js`) as (module: object, exports: object) => void;
    const module = { exports: {} as unknown };
    factory(module, module.exports as object);
    return { exports: module.exports };
  },
  harden(value) {
    return harden(value);
  },
};
