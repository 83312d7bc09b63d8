import t from 'tap'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { startServer } from '../helpers/processes.ts'
import { seededDatabase } from '../helpers/seed.ts'

// Off localhost (a VM, a container, a LAN name) over plain http: the page must render, which it did
// not while the CSP carried upgrade-insecure-requests (the browser then asked https for every asset).
t.test('/docs renders through a non-loopback host name over plain http', { skip: skipWithoutChromium }, async (t) => {
  const seeded = await seededDatabase([])
  t.teardown(() => seeded.close())
  const server = await startServer({ ...seeded.env, JOBS_ENABLED: 'false' })
  t.teardown(() => server.stop())
  const port = new URL(server.url).port

  // docs.test is this machine, by a name that is not localhost (so not a "potentially trustworthy" origin).
  const browser = await launchChromium(['--host-resolver-rules=MAP docs.test 127.0.0.1'])
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 16000 } })
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  const failed: string[] = []
  page.on('requestfailed', (r) => failed.push(r.url()))

  const res = await page.goto(`http://docs.test:${port}/docs`, { waitUntil: 'networkidle' })
  t.equal(res?.status(), 200)
  t.notMatch(String(res?.headers()['content-security-policy']), /upgrade-insecure-requests/)
  await page.waitForSelector('.opblock-tag', { timeout: 30_000 })
  t.match(await page.locator('.info .title').innerText(), /NOWATCH API/, 'Swagger UI rendered, not a blank page')
  t.ok((await page.locator('.opblock-tag').count()) > 5, 'with its operations')
  t.same(failed, [], 'every asset loaded (none upgraded to https)')
  t.same(problems, [], 'no script or CSP errors in the page')
})
