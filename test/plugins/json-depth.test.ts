import fc from 'fast-check'
import t from 'tap'
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../plugins/security.ts'
import { fixPropertySeed } from '../helpers/property-seed.ts'

fixPropertySeed(20_261_204)

/** The plain character-by-character scan: the oracle of the indexOf one in plugins/security.ts. */
function oracle(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

t.test('jsonDepthExceeds answers what the plain scan answers', async (t) => {
  // Quotes, runs of backslashes and brackets inside and outside strings, unterminated strings.
  const text = fc
    .array(fc.constantFrom('"', '\\', '\\\\', '\\"', '[', ']', '{', '}', 'a', ',', ':', '1'), { maxLength: 300 })
    .map((parts) => parts.join(''))
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 8 }), (s, limit) => jsonDepthExceeds(s, limit) === oracle(s, limit)),
      { numRuns: 20_000 },
    ),
  )
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
  t.equal(jsonDepthExceeds(deep(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false, 'at the limit')
  t.equal(jsonDepthExceeds(deep(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true, 'past it')
  t.equal(jsonDepthExceeds(`{"a":"${'['.repeat(100)}"}`, MAX_JSON_DEPTH), false, 'brackets in a string do not count')
  t.equal(jsonDepthExceeds(`["\\\\"${'['.repeat(100)}`, MAX_JSON_DEPTH), true, 'an escaped backslash ends no string')
  t.equal(jsonDepthExceeds(`["\\"${'['.repeat(100)}`, MAX_JSON_DEPTH), false, 'an escaped quote ends no string')
})
