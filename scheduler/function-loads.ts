/**
 * The function loads an executor reports in its status (call rates, latencies, errors of its
 * hottest functions), checked before the scheduler keeps them for the monitor.
 */
import { NAME_PATTERN } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';

/** Function loads kept per executor, at most (an executor reports its 32 hottest). */
export const FUNCTION_LOADS_MAX = 64;

/**
 * An executor's reported function loads, checked: at most FUNCTION_LOADS_MAX, names that are
 * function names, rates and latencies finite and not negative (the decoder already refused
 * non-finite doubles; a hand-built status may not have).
 *
 * @example
 * ```ts
 * functionLoadsOf([{ name: 'f', rate: -1, p50Ms: 2 }]); // [{ name: 'f', rate: 0, p50Ms: 2, p99Ms: 0, errors: 0 }]
 * ```
 */
export function functionLoadsOf(loads: readonly PbTypes.IFunctionLoad[]): PbTypes.IFunctionLoad[] {
  const out: PbTypes.IFunctionLoad[] = [];
  const positive = (value: number | null | undefined): number => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0);
  for (const load of loads) {
    if (out.length >= FUNCTION_LOADS_MAX) break;
    const name = load.name ?? '';
    if (!NAME_PATTERN.test(name)) continue;
    out.push({ name, rate: positive(load.rate), p50Ms: positive(load.p50Ms), p99Ms: positive(load.p99Ms), errors: positive(load.errors) });
  }
  return out;
}
