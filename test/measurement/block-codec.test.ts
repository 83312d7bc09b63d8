import fc from 'fast-check'
import t from 'tap'
import { decodeBlock, encodeBlock } from '../../routes/measurement/block-codec.ts'

// Property tests of the block encoding: any series decodes to itself bit for bit (Object.is per value, so -0
// stays -0), in the order given. fast-check's seed is fixed so that a failure replays; its shrinking prints
// the smallest failing series.
const SEED = 20_261_201
const RUNS = 300

const bitsEqual = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]))

function roundTrips(times: number[], values: number[]): boolean {
  const out = decodeBlock(encodeBlock({ times, values }))
  return bitsEqual(out.times, times) && bitsEqual(out.values, values)
}

const hour = 3600_000
const T0 = Date.parse('2024-05-10T10:00:00Z')

/** A watch-like clock: steady steps with jitter, gaps, repeats and steps back. */
const times = (n: fc.Arbitrary<number>) =>
  fc
    .array(
      fc.oneof(
        { weight: 6, arbitrary: fc.constant(1000) },
        { weight: 2, arbitrary: fc.integer({ min: 990, max: 1010 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 * 60_000 }) }, // gaps and duplicates (0)
        { weight: 1, arbitrary: fc.integer({ min: -5000, max: -1 }) }, // out of order
      ),
      { maxLength: 4000 },
    )
    .chain((steps) =>
      n.map((start) => {
        const out: number[] = []
        let at = start
        for (const s of steps) {
          out.push(at)
          at += s
        }
        return out
      }),
    )

const edgeDoubles = fc.constantFrom(
  0,
  -0,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.EPSILON,
  2 ** 50,
  -(2 ** 50),
  2 ** 53 - 1,
  2 ** 53 + 2,
  0.1 + 0.2,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e-310, // subnormal
)

/** Values per kind of series: integers near each other (heart rate), decimals (temperature), any double. */
const valueSeries = (length: number) =>
  fc.oneof(
    fc.array(fc.integer({ min: 30, max: 220 }), { minLength: length, maxLength: length }),
    fc.array(
      fc.integer({ min: 3000, max: 4200 }).map((n) => n / 100),
      { minLength: length, maxLength: length },
    ),
    fc.array(fc.double({ noNaN: true }), { minLength: length, maxLength: length }),
    fc.array(fc.oneof(fc.double({ noNaN: true }), edgeDoubles, fc.integer()), { minLength: length, maxLength: length }),
  )

const series = fc
  .tuple(times(fc.integer({ min: T0 - 400 * 24 * hour, max: T0 + 400 * 24 * hour })))
  .chain(([ts]) => valueSeries(ts.length).map((vs) => ({ times: ts, values: vs })))

t.test('random series round-trip bit-exactly', async (t) => {
  fc.assert(
    fc.property(series, ({ times, values }) => roundTrips(times, values)),
    { seed: SEED, numRuns: RUNS },
  )
  t.pass(`${RUNS} series`)
})

t.test('edge timestamps and values', async (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.integer({ min: -(2 ** 48), max: 2 ** 48 }), fc.oneof(edgeDoubles, fc.double({ noNaN: true }))),
        {
          maxLength: 200,
        },
      ),
      (pairs) =>
        roundTrips(
          pairs.map((p) => p[0]),
          pairs.map((p) => p[1]),
        ),
    ),
    { seed: SEED, numRuns: RUNS },
  )
  t.ok(roundTrips([], []), 'an empty block')
  t.ok(roundTrips([T0], [-0]), 'one sample, -0 stays -0')
  t.ok(roundTrips([T0, T0, T0], [1, 1, 1]), 'duplicates')
  t.ok(roundTrips([2 ** 48, -(2 ** 48)], [1.5, 2 ** 50]), 'the widest step')
  t.throws(() => encodeBlock({ times: [2 ** 49], values: [1] }), /out of range/)
  t.throws(() => encodeBlock({ times: [1.5], values: [1] }), /out of range/)
})

t.test('what a block costs: an hour of 1 Hz integer heart rate and of two-decimal temperatures', async (t) => {
  const hrTimes = Array.from({ length: 3600 }, (_, i) => T0 + i * 1000)
  // A random walk of -1, 0 or +1 bpm a second (seeded LCG): a periodic pattern would compress unfairly well.
  let v = 70
  let seed = 42
  const hr = hrTimes.map(() => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    v = Math.max(40, Math.min(180, v + (seed % 3) - 1))
    return v
  })
  const hrBytes = encodeBlock({ times: hrTimes, values: hr }).length
  t.ok(hrBytes < 0.5 * 3600, `1 Hz heart rate: ${hrBytes} bytes for 3,600 samples`)
  const temp = hrTimes.map((_, i) => 33 + ((i * 31) % 200) / 100)
  const tempBytes = encodeBlock({ times: hrTimes, values: temp }).length
  t.ok(tempBytes < 2 * 3600, `temperature: ${tempBytes} bytes for 3,600 samples`)
  t.ok(roundTrips(hrTimes, hr) && roundTrips(hrTimes, temp))
})

t.test('damaged blocks are refused, not misread', async (t) => {
  const good = encodeBlock({ times: [T0, T0 + 1000, T0 + 2000], values: [60, 61, 62] })
  t.throws(() => decodeBlock(Buffer.alloc(0)))
  t.throws(() => decodeBlock(good.subarray(0, good.length - 1)))
  t.throws(() => decodeBlock(Buffer.concat([Buffer.from([0, 9]), good.subarray(2)])))
  const raw = Buffer.from([0, 1, 1, 0, 0, 2, 0, 0])
  t.throws(() => decodeBlock(Buffer.concat([raw, Buffer.from([7])])), /trailing|truncated/)
})
