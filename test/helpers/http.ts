import type { FastifyInstance } from 'fastify'

/** Small request helpers: a JSON call with the client token, and one with a bearer token. */
export function clientPost(app: FastifyInstance, clientToken: string) {
  return (url: string, payload: unknown) =>
    app.inject({ method: 'POST', url, headers: { 'x-auth-token': clientToken }, payload: payload as object })
}

export function decodeJwt(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}
