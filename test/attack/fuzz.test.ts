import t from 'tap'
import { fuzzEveryOperation } from '../helpers/contract-fuzz.ts'

// Generated valid, hostile and naughty-string requests for every operation (test/helpers/contract-fuzz.ts).
t.test('every operation answers documented statuses in the error shape, never a 500', (t) =>
  fuzzEveryOperation(t, { property: true, sweep: false }),
)
