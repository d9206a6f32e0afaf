import { describe, expect, it } from 'vitest';
import { SubscriptionTable } from './subscription-table.js';

describe('SubscriptionTable', () => {
  it('keeps leases per key and subscriber, renews without counting twice, and expires them', () => {
    const table = new SubscriptionTable(10);
    expect(table.add(['a', 'b'], 'tcp://127.0.0.1:1', 100)).toBe(true);
    expect(table.add(['a'], 'tcp://127.0.0.1:1', 200)).toBe(true);
    expect(table.add(['a'], 'tcp://127.0.0.1:2', 50)).toBe(true);
    expect(table.count).toBe(3);
    expect([...table.keys()].sort()).toEqual(['a', 'b']);
    expect(table.subscribersOf('a')).toEqual(new Map([['tcp://127.0.0.1:1', 200], ['tcp://127.0.0.1:2', 50]]));
    table.expire(100);
    expect(table.count).toBe(1);
    expect([...table.keys()]).toEqual(['a']);
    table.remove('a', 'tcp://127.0.0.1:1');
    expect(table.count).toBe(0);
    expect(table.subscribersOf('a')).toBeUndefined();
  });

  it('refuses, changing nothing, a subscribe that would pass the bound', () => {
    const table = new SubscriptionTable(2);
    expect(table.add(['a'], 's', 10)).toBe(true);
    expect(table.add(['b', 'c'], 's', 10)).toBe(false);
    expect(table.count).toBe(1);
    expect(table.add(['a', 'b'], 's', 20)).toBe(true);
    expect(table.count).toBe(2);
  });

  it('groups the subscriptions of keys by subscriber with the shortest lease left', () => {
    const table = new SubscriptionTable(10);
    table.add(['a'], 's1', 1000);
    table.add(['b'], 's1', 400);
    table.add(['b'], 's2', 100.4);
    expect(table.forwardable(['a', 'b', 'c'], 100)).toEqual([
      { subscriber: 's1', keys: ['a', 'b'], leaseMs: 300 },
      { subscriber: 's2', keys: ['b'], leaseMs: 1 },
    ]);
  });
});
