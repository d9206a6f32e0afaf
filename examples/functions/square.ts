/** `x * x`: the sink of the `square(increment(x))` DAG (its argument is increment's result). */
export default function square(x: number): number {
  if (typeof x !== 'number') throw new TypeError(`square takes a number, got ${JSON.stringify(x)}`);
  return x * x;
}
