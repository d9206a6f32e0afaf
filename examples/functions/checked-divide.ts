/**
 * `a / b`, logging what it divides; throws from a helper for `b === 0`, so the caller's error
 * carries the function's own stack trace, mapped back to this file's lines by its source map.
 */
import type { FunctionContext } from '../../client/index.js';

function nonZero(divisor: number): number {
  if (divisor === 0) throw new RangeError('cannot divide by zero');
  return divisor;
}

export default function checkedDivide(a: number, b: number, ctx: FunctionContext): number {
  console.log(`dividing ${a} by ${b}`);
  ctx.log.info({ a, b }, 'divide');
  return a / nonZero(b);
}
