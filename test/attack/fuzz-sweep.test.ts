import t from 'tap'
import { fuzzEveryOperation } from '../helpers/contract-fuzz.ts'

// The worst strings and date-times in every string field of every operation, one request each
// (test/helpers/contract-fuzz.ts); its own file so that each half has the suite's per-file time.
t.test('every string field of every operation survives NUL, lone surrogates, 10 kB and edge dates', (t) =>
  fuzzEveryOperation(t, { property: false, sweep: true }),
)
