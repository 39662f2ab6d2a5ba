import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StalenessGate } from '../../coordinator/staleness-gate';
import { parseMode, shardModeOf, stalenessBoundOf } from '../../core/trial-spec';

describe('ssp:N', () => {
  it('reads ssp:N, and runs it on the shards as async with a bound', () => {
    assert.equal(parseMode(' ssp:03 '), 'ssp:3');
    assert.equal(parseMode(''), 'async');
    assert.deepEqual(
      ['sync', 'async', 'ssp:3'].map((m) => shardModeOf(parseMode(m))),
      ['sync', 'async', 'async'],
    );
    assert.equal(stalenessBoundOf('ssp:3'), 3);
    assert.equal(stalenessBoundOf('async'), undefined);
    for (const bad of ['ssp:0', 'ssp:', 'ssp:1.5', 'ssp:-1', 'bsp'])
      assert.throws(() => parseMode(bad), /is not one of sync, async, ssp:N/, bad);
  });

  it('lets a lease hold no more batches than keep every other live lease within N versions', () => {
    const gate = new StalenessGate(3);
    assert.equal(gate.allowance([]), 3, 'alone, a worker is bounded by N per lease');
    const slow = gate.grant(1, 0);
    assert.equal(gate.allowance([slow]), 3);
    gate.grant(2, 1);
    assert.equal(gate.allowance([slow]), 1, 'two batches granted since the slow lease');
    const fast = gate.grant(1, 1);
    assert.equal(gate.allowance([slow]), 0, 'the slow lease could now be 3 versions behind');
    assert.equal(gate.allowance([slow, fast]), 0);
    assert.equal(gate.allowance([fast]), 2, 'once the slow lease is back, the gate opens');
    // A lease granted while 2 other batches are out counts them as landing after its values.
    const late = gate.grant(1, 2);
    assert.equal(gate.allowance([late]), 1);
  });
});
