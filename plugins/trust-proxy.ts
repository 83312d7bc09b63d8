import { isIP } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** What Fastify's `trustProxy` takes: all or nothing, a number of hops, or the proxies' addresses. */
export type TrustProxy = boolean | number | string[]

// @fastify/proxy-addr's names for whole ranges.
const NAMED = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isAddressOrCidr(item: string): boolean {
  if (NAMED.has(item)) return true
  const [address, prefix, ...rest] = item.split('/')
  const family = isIP(address)
  if (!family || rest.length) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/**
 * TRUST_PROXY as Fastify understands it (https://fastify.dev/docs/latest/Reference/Server/#trustproxy):
 * `true`/`false`, a hop count (`1` = the one load balancer in front), or a comma-separated list of
 * proxy addresses, CIDR ranges or the names loopback, linklocal, uniquelocal. Throws a message naming
 * the bad entry, so boot stops with it.
 */
export function parseTrustProxy(value: string): TrustProxy {
  const v = value.trim().toLowerCase()
  if (v === 'true') return true
  if (v === 'false' || v === '') return false
  if (/^\d+$/.test(v)) return Number(v)
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const bad = items.find((i) => !isAddressOrCidr(i))
  if (bad !== undefined) {
    throw new Error(
      `"${bad}" is not true, false, a hop count, an IP address, a CIDR range or loopback/linklocal/uniquelocal`,
    )
  }
  return items
}

/**
 * The value for Fastify's `trustProxy`. Fastify 5.12 turned a bare hop count into "trust nothing" (it
 * cannot check the peer), so a count is given as the function proxy-addr calls per hop: the `n` hops
 * nearest this server are trusted, whoever they are. That is right only when the server cannot be
 * reached except through those proxies; otherwise list the proxies' addresses.
 */
export function fastifyTrustProxy(tp: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof tp !== 'number') return tp
  return function trustHops(_address: string, hop: number) {
    return hop < tp
  }
}

/**
 * With TRUST_PROXY off, a request carrying X-Forwarded-For means this server is probably behind a proxy
 * and sees the proxy's address for everyone: one set of rate limits for all users and the proxy's IP in
 * every history entry. Said once per process, loudly, not per request.
 */
export default fp(
  async function trustProxyPlugin(app: FastifyInstance) {
    if (app.config.TRUST_PROXY !== false) return
    let warned = false
    app.addHook('onRequest', function warnUntrustedProxy(request, _reply, done) {
      if (!warned && request.headers['x-forwarded-for'] !== undefined) {
        warned = true
        app.log.warn(
          'A request arrived with X-Forwarded-For but TRUST_PROXY is off: every client behind that proxy shares its address, so they share one set of rate limits and the history shows the proxy. Set TRUST_PROXY to the proxy addresses, a hop count or true. (Said once.)',
        )
      }
      done()
    })
  },
  { name: 'trust-proxy', dependencies: ['config'] },
)
