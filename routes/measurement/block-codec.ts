import { deflateRawSync, inflateRawSync } from 'node:zlib'

/**
 * The encoding of a block of samples (one user, type, device and hour in measurement_blocks): a sequence
 * of (timestamp in ms, float64 value) pairs, in any order, duplicates allowed, that decodes bit-exactly to
 * the same sequence.
 *
 * Layout (byte-oriented, then raw DEFLATE when that is smaller; after Gorilla, Pelkonen et al., VLDB 2015,
 * https://www.vldb.org/pvldb/vol8/p1816-teller.pdf, but on bytes so that it stays simple and fast in JS):
 *   flags (bit 0: the rest is DEFLATE-compressed), then
 *   version 1, count (varint), value mode (0 scaled integers, 1 XOR floats), decimal scale,
 *   timestamps: first (zigzag varint), then delta-of-delta tokens,
 *   values: scaled integers as the same delta tokens, or XOR floats.
 * A token is a zigzag varint; 0 starts a run of zeros and is followed by the run's length - 1, so a steady
 * 1 Hz clock costs a few bytes an hour and a steady value a few bytes per run.
 * Scaled integers: the smallest decimal scale s (0..9) at which every value v is an integer n with
 * n / 10^s === v exactly (and not -0), |n| <= 2^50 so that deltas stay exact in doubles. Heart rate, steps,
 * stages and two-decimal temperatures take this path. Otherwise XOR floats: per value one control byte
 * (leading zero bytes << 4 | trailing zero bytes of the XOR with the previous value's bits; 0x80 when
 * equal) and the bytes between.
 * DEFLATE then removes what is left of the redundancy (zlib: Node's own, no dependency).
 */

const VERSION = 1
const MODE_SCALED = 0
const MODE_XOR = 1
const MAX_SCALE = 9
const MAX_SCALED = 2 ** 50
const MAX_TIME = 2 ** 48

export interface BlockSamples {
  /** Milliseconds since the epoch (integers). */
  times: number[]
  values: number[]
}

class Writer {
  buf = Buffer.allocUnsafe(256)
  len = 0
  private ensure(n: number) {
    if (this.len + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
  byte(b: number) {
    this.ensure(1)
    this.buf[this.len++] = b
  }
  /** An unsigned integer below 2^53, 7 bits a byte. */
  varint(v: number) {
    this.ensure(8)
    let x = v
    while (x >= 0x80) {
      this.buf[this.len++] = (x % 0x80) | 0x80
      x = Math.floor(x / 0x80)
    }
    this.buf[this.len++] = x
  }
  bytes(src: Uint8Array, from: number, to: number) {
    this.ensure(to - from)
    for (let i = from; i < to; i++) this.buf[this.len++] = src[i]
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

class Reader {
  pos = 0
  constructor(readonly buf: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('block: truncated')
    return this.buf[this.pos++]
  }
  varint(): number {
    let v = 0
    let mul = 1
    for (;;) {
      const b = this.byte()
      v += (b & 0x7f) * mul
      if (b < 0x80) return v
      mul *= 0x80
      if (mul > 2 ** 56) throw new Error('block: varint too long')
    }
  }
}

const zigzag = (v: number) => (v >= 0 ? 2 * v : -2 * v - 1)
const unzigzag = (z: number) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2)

/** Writes integers as zigzag tokens with runs of zeros collapsed. */
function writeTokens(w: Writer, ints: number[]) {
  for (let i = 0; i < ints.length; ) {
    if (ints[i] === 0) {
      let run = 1
      while (i + run < ints.length && ints[i + run] === 0) run++
      w.varint(0)
      w.varint(run - 1)
      i += run
    } else {
      w.varint(zigzag(ints[i]))
      i++
    }
  }
}

function readTokens(r: Reader, count: number): number[] {
  const out = new Array<number>(count)
  for (let i = 0; i < count; ) {
    const z = r.varint()
    if (z === 0) {
      const run = r.varint() + 1
      if (i + run > count) throw new Error('block: run past the end')
      for (let k = 0; k < run; k++) out[i++] = 0
    } else {
      out[i++] = unzigzag(z)
    }
  }
  return out
}

/** The smallest scale at which every value is an exact integer, or -1. */
function scaleOf(values: number[]): number {
  for (let s = 0; s <= MAX_SCALE; s++) {
    const f = 10 ** s
    let ok = true
    for (const v of values) {
      const n = Math.round(v * f)
      if (!(Math.abs(n) <= MAX_SCALED && n / f === v && !Object.is(v, -0))) {
        ok = false
        break
      }
    }
    if (ok) return s
  }
  return -1
}

export function encodeBlock({ times, values }: BlockSamples): Buffer {
  if (times.length !== values.length) throw new Error('block: times and values differ in length')
  const w = new Writer()
  w.byte(VERSION)
  w.varint(times.length)
  const scale = scaleOf(values)
  w.byte(scale < 0 ? MODE_XOR : MODE_SCALED)
  w.byte(scale < 0 ? 0 : scale)
  if (times.length > 0) {
    for (const t of times) {
      if (!Number.isSafeInteger(t) || Math.abs(t) > MAX_TIME) throw new Error('block: timestamp out of range')
    }
    w.varint(zigzag(times[0]))
    const dods: number[] = []
    let prev = times[0]
    let prevDelta = 0
    for (let i = 1; i < times.length; i++) {
      const delta = times[i] - prev
      dods.push(delta - prevDelta)
      prevDelta = delta
      prev = times[i]
    }
    writeTokens(w, dods)
    if (scale >= 0) {
      const f = 10 ** scale
      const deltas: number[] = []
      let p = 0
      for (const v of values) {
        const n = Math.round(v * f)
        deltas.push(n - p)
        p = n
      }
      writeTokens(w, deltas)
    } else {
      writeXor(w, values)
    }
  }
  const raw = w.result()
  const packed = deflateRawSync(raw)
  if (packed.length < raw.length) return Buffer.concat([Buffer.from([1]), packed])
  return Buffer.concat([Buffer.from([0]), raw])
}

function writeXor(w: Writer, values: number[]) {
  const view = new DataView(new ArrayBuffer(16))
  const bytes = new Uint8Array(view.buffer)
  // bytes 0..7: previous value's bits, 8..15: the XOR
  for (const v of values) {
    const prevHi = view.getUint32(0)
    const prevLo = view.getUint32(4)
    view.setFloat64(0, v)
    view.setUint32(8, view.getUint32(0) ^ prevHi)
    view.setUint32(12, view.getUint32(4) ^ prevLo)
    let lead = 0
    while (lead < 8 && bytes[8 + lead] === 0) lead++
    if (lead === 8) {
      w.byte(0x80)
      continue
    }
    let trail = 0
    while (bytes[15 - trail] === 0) trail++
    w.byte((lead << 4) | trail)
    w.bytes(bytes, 8 + lead, 16 - trail)
  }
}

function readXor(r: Reader, count: number): number[] {
  const view = new DataView(new ArrayBuffer(16))
  const bytes = new Uint8Array(view.buffer)
  const out = new Array<number>(count)
  for (let i = 0; i < count; i++) {
    const control = r.byte()
    if (control !== 0x80) {
      const lead = control >> 4
      const trail = control & 0x0f
      if (lead > 7 || trail > 7 || lead + trail > 7) throw new Error('block: bad XOR control byte')
      bytes.fill(0, 8, 16)
      for (let k = 8 + lead; k < 16 - trail; k++) bytes[k] = r.byte()
      for (let k = 0; k < 8; k++) bytes[k] ^= bytes[8 + k]
    }
    out[i] = view.getFloat64(0)
  }
  return out
}

export function decodeBlock(data: Uint8Array): BlockSamples {
  if (data.length < 1) throw new Error('block: empty')
  const body = data[0] === 1 ? inflateRawSync(data.subarray(1)) : data.subarray(1)
  const r = new Reader(body)
  if (r.byte() !== VERSION) throw new Error('block: unknown version')
  const count = r.varint()
  const mode = r.byte()
  const scale = r.byte()
  if (count === 0) return { times: [], values: [] }
  const times = new Array<number>(count)
  times[0] = unzigzag(r.varint())
  const dods = readTokens(r, count - 1)
  let delta = 0
  for (let i = 1; i < count; i++) {
    delta += dods[i - 1]
    times[i] = times[i - 1] + delta
  }
  let values: number[]
  if (mode === MODE_SCALED) {
    if (scale > MAX_SCALE) throw new Error('block: bad scale')
    const f = 10 ** scale
    const deltas = readTokens(r, count)
    values = new Array<number>(count)
    let n = 0
    for (let i = 0; i < count; i++) {
      n += deltas[i]
      values[i] = n / f
    }
  } else if (mode === MODE_XOR) {
    values = readXor(r, count)
  } else {
    throw new Error('block: unknown value mode')
  }
  if (r.pos !== body.length) throw new Error('block: trailing bytes')
  return { times, values }
}
