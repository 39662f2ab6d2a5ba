import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  leaders,
  refineSpace,
  sampleTrials,
  type Direction,
  type Hyper,
  type ScoredTrial,
  type SearchDomain,
  type SearchSpace,
} from '../../core/sweep';

const rangeDomain: fc.Arbitrary<SearchDomain> = fc.oneof(
  fc
    .tuple(
      fc.double({ min: -1e4, max: 1e4, noNaN: true }),
      fc.double({ min: 1e-3, max: 1e4, noNaN: true }),
    )
    .map(([low, w]): SearchDomain => ({ kind: 'uniform', low, high: low + w })),
  fc
    .tuple(
      fc.double({ min: 1e-9, max: 1e2, noNaN: true }),
      fc.double({ min: 1.01, max: 1e6, noNaN: true }),
    )
    .map(([low, r]): SearchDomain => ({ kind: 'log_uniform', low, high: low * r })),
  fc
    .tuple(fc.integer({ min: -500, max: 500 }), fc.nat(1000))
    .map(([low, w]): SearchDomain => ({ kind: 'int', low, high: low + w })),
  fc
    .tuple(fc.integer({ min: 1, max: 500 }), fc.nat(10_000))
    .map(([low, w]): SearchDomain => ({ kind: 'int_log', low, high: low + w })),
  fc
    .tuple(
      fc.integer({ min: 0, max: 12 }),
      fc.double({ min: 1, max: 1.99, noNaN: true }),
      fc.nat(8),
    )
    .map(([e, f, w]): SearchDomain => ({ kind: 'pow2', low: 2 ** e / f, high: 2 ** (e + w) })),
);

const choiceDomain: fc.Arbitrary<SearchDomain> = fc
  .uniqueArray(fc.oneof(fc.integer(), fc.string(), fc.array(fc.nat(512), { minLength: 1 })), {
    minLength: 1,
    maxLength: 6,
    selector: (v) => JSON.stringify(v),
  })
  .map((values): SearchDomain => ({ kind: 'choice', values }));

const space: fc.Arbitrary<SearchSpace> = fc
  .array(fc.oneof(rangeDomain, choiceDomain), { minLength: 1, maxLength: 4 })
  .map((domains) => Object.fromEntries(domains.map((d, i) => [`p${i}`, d])));

const direction = fc.constantFrom<Direction>('maximize', 'minimize');

function holds(domain: SearchDomain, value: unknown): boolean {
  if (domain.kind === 'choice')
    return domain.values.some((v) => JSON.stringify(v) === JSON.stringify(value));
  return typeof value === 'number' && value >= domain.low && value <= domain.high;
}

function inside(inner: SearchDomain, outer: SearchDomain): boolean {
  if (inner.kind !== outer.kind) return false;
  if (inner.kind === 'choice') return inner.values.every((v) => holds(outer, v));
  const o = outer as Exclude<SearchDomain, { kind: 'choice' }>;
  return inner.low >= o.low && inner.high <= o.high && inner.low <= inner.high;
}

/** Trials sampled from the space, scored at random (some not finite), with the range ends. */
const trials = (s: SearchSpace) =>
  fc
    .tuple(
      fc.nat(1_000_000),
      fc.array(fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), fc.constant(NaN)), {
        minLength: 1,
        maxLength: 20,
      }),
    )
    .map(([seed, scores]): ScoredTrial[] => {
      const hypers: Hyper[] = sampleTrials(s, scores.length, seed);
      // Put the ends of each range in play: leaders on the boundary are the hard case.
      for (const [name, d] of Object.entries(s)) {
        if (d.kind !== 'choice' && d.kind !== 'pow2' && hypers.length > 1) {
          hypers[0][name] = d.low;
          hypers[1][name] = d.high;
        }
      }
      return hypers.map((hyper, i) => ({ hyper, score: scores[i] }));
    });

describe('refineSpace laws', () => {
  it('refined domains lie inside the previous ones and contain the leaders', () => {
    fc.assert(
      fc.property(
        space.chain((s) =>
          fc.tuple(fc.constant(s), trials(s), fc.integer({ min: 1, max: 6 }), direction),
        ),
        ([s, results, top, dir]) => {
          const refined = refineSpace(s, results, top, dir);
          assert.deepEqual(Object.keys(refined), Object.keys(s));
          const best = leaders(results, top, dir);
          for (const [name, domain] of Object.entries(s)) {
            const r = refined[name];
            assert.ok(
              inside(r, domain),
              `${name}: ${JSON.stringify(r)} not inside ${JSON.stringify(domain)}`,
            );
            for (const leader of best)
              assert.ok(
                holds(r, leader.hyper[name]),
                `${name}: leader ${JSON.stringify(leader.hyper[name])} outside ${JSON.stringify(r)}`,
              );
            if (r.kind === 'int' || r.kind === 'int_log')
              assert.ok(Number.isInteger(r.low) && Number.isInteger(r.high));
            if (r.kind === 'pow2') assert.ok(sampleTrials({ x: r }, 1, 0).length === 1);
          }
        },
      ),
    );
  });

  it('the laws hold round after round', () => {
    fc.assert(
      fc.property(space, fc.nat(1000), direction, (s, seed, dir) => {
        let current = s;
        for (let round = 1; round <= 4; round++) {
          const hypers = sampleTrials(current, 8, seed, round);
          const results = hypers.map((hyper, i) => ({ hyper, score: Math.sin(seed + i * round) }));
          const next = refineSpace(current, results, 3, dir);
          for (const name of Object.keys(s)) {
            assert.ok(inside(next[name], current[name]));
            for (const leader of leaders(results, 3, dir))
              assert.ok(holds(next[name], leader.hyper[name]));
          }
          current = next;
        }
      }),
    );
  });
});

describe('refineSpace by hand', () => {
  const lr: SearchSpace = { lr: { kind: 'log_uniform', low: 1e-5, high: 1 } };
  const scored = (values: number[], scores: number[]) =>
    values.map((v, i) => ({ hyper: { lr: v }, score: scores[i] }));

  it('narrows a log range around the leaders on the log axis', () => {
    // Leaders 1e-4 and 1e-1 span 3 decades; 25% of that (0.75) beats a tenth of the 5
    // previous decades (0.5).
    const refined = refineSpace(
      lr,
      scored([1e-4, 1e-1, 1e-5, 0.5], [0.9, 0.95, 0.2, 0.1]),
      2,
      'maximize',
    );
    const d = refined.lr as { low: number; high: number };
    assert.ok(Math.abs(Math.log10(d.low) - -4.75) < 1e-9, `low ${d.low}`);
    assert.ok(Math.abs(Math.log10(d.high) - -0.25) < 1e-9, `high ${d.high}`);
    // Leaders one decade apart get the floor: half a decade each side.
    const near = refineSpace(lr, scored([1e-3, 1e-2], [1, 1]), 2, 'maximize').lr as {
      low: number;
      high: number;
    };
    assert.ok(Math.abs(Math.log10(near.low) - -3.5) < 1e-9, `low ${near.low}`);
    assert.ok(Math.abs(Math.log10(near.high) - -1.5) < 1e-9, `high ${near.high}`);
  });

  it('widens a single leader by a tenth of the previous width each side, clamped inside', () => {
    const refined = refineSpace(
      { x: { kind: 'uniform', low: 0, high: 10 } },
      [{ hyper: { x: 0.5 }, score: 1 }],
      1,
      'minimize',
    );
    assert.deepEqual(refined.x, { kind: 'uniform', low: 0, high: 1.5 });
  });

  it('keeps the choices the leaders used, in their order', () => {
    const s: SearchSpace = { hidden: { kind: 'choice', values: [[64], [128], [256, 128]] } };
    const results = [
      { hyper: { hidden: [256, 128] }, score: 0.1 },
      { hyper: { hidden: [64] }, score: 0.3 },
      { hyper: { hidden: [128] }, score: 0.9 },
    ];
    assert.deepEqual(refineSpace(s, results, 2, 'minimize').hidden, {
      kind: 'choice',
      values: [[64], [256, 128]],
    });
  });

  it('rounds integer ranges and keeps pow2 ends powers of two', () => {
    const s: SearchSpace = {
      units: { kind: 'int', low: 1, high: 100 },
      batch: { kind: 'pow2', low: 8, high: 1024 },
    };
    const results = [
      { hyper: { units: 40, batch: 64 }, score: 1 },
      { hyper: { units: 60, batch: 128 }, score: 2 },
      { hyper: { units: 5, batch: 1024 }, score: -5 },
    ];
    const refined = refineSpace(s, results, 2, 'maximize');
    // span 20, margin max(5, 9.9) = 9.9: [30.1, 69.9] rounded.
    assert.deepEqual(refined.units, { kind: 'int', low: 30, high: 70 });
    // log2 span 1, margin max(0.25, 0.7) = 0.7: 2^5.3 .. 2^7.7, rounded in the exponent.
    assert.deepEqual(refined.batch, { kind: 'pow2', low: 32, high: 256 });
  });

  it('without finite scores, or for names no leader has, keeps the space', () => {
    assert.deepEqual(refineSpace(lr, scored([1e-3], [NaN]), 2, 'maximize'), lr);
    assert.deepEqual(refineSpace(lr, [{ hyper: {}, score: 1 }], 2, 'maximize'), lr);
    assert.deepEqual(refineSpace(lr, [], 2, 'maximize'), lr);
  });

  it('ranks leaders by score in the direction, ties to the earlier', () => {
    const results = [
      { hyper: { id: 'a' }, score: 0.5 },
      { hyper: { id: 'b' }, score: NaN },
      { hyper: { id: 'c' }, score: 0.7 },
      { hyper: { id: 'd' }, score: 0.5 },
    ];
    assert.deepEqual(
      leaders(results, 3, 'maximize').map((r) => r.hyper.id),
      ['c', 'a', 'd'],
    );
    assert.deepEqual(
      leaders(results, 2, 'minimize').map((r) => r.hyper.id),
      ['a', 'd'],
    );
  });
});
