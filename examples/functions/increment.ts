/** `x + 1`: the first function of the `square(increment(x))` DAG. */
export default function increment(x: number): number {
  if (typeof x !== 'number') throw new TypeError(`increment takes a number, got ${JSON.stringify(x)}`);
  return x + 1;
}
