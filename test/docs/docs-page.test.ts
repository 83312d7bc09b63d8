import { mkdirSync } from 'node:fs'
import t from 'tap'
import { REFERENCE_TAGS } from '../../plugins/swagger.ts'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { startServer } from '../helpers/processes.ts'
import { seededDatabase } from '../helpers/seed.ts'

t.test('/docs lists every tag of the reference and expands an operation', { skip: skipWithoutChromium }, async (t) => {
  const seeded = await seededDatabase([])
  t.teardown(() => seeded.close())
  const server = await startServer({ ...seeded.env, JOBS_ENABLED: 'false' })
  t.teardown(() => server.stop())

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  // Swagger UI (5.x in this chromium) renders the operation list only about as far as the viewport reaches
  // once the spec passes ~130 operations, and the tags below are then absent from the DOM: a tall
  // viewport keeps every tag rendered. The screenshot stays the top 2000 px.
  const page = await browser.newPage({ viewport: { width: 1280, height: 16000 } })
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })

  const res = await page.goto(`${server.url}/docs`, { waitUntil: 'networkidle' })
  t.equal(res?.status(), 200)
  await page.waitForSelector('.opblock-tag', { timeout: 30_000 })
  t.match(await page.locator('.info .title').innerText(), /NOWATCH API/)
  const tags = await page.locator('.opblock-tag').evaluateAll((els) => els.map((e) => e.getAttribute('data-tag')))
  for (const tag of REFERENCE_TAGS) t.ok(tags.includes(tag), `tag ${tag} is listed`)

  const login = page.locator('#operations-auth-post_v2_auth_login')
  await login.locator('.opblock-summary').click()
  await page.waitForSelector('#operations-auth-post_v2_auth_login .opblock-body', { timeout: 10_000 })
  const body = await login.innerText()
  t.match(body, /garryTheSnail@bikinibottom\.com/, 'the expanded login shows the reference example body')
  t.match(body, /Access and refresh token information/, 'and the token answer')
  t.match(body, /invalid_credentials/, 'and its documented errors')
  t.ok(await login.locator('.authorization__btn').count(), 'a padlock: the route needs a credential')
  t.same(problems, [], 'no script or CSP errors in the page')

  mkdirSync('test-output', { recursive: true })
  await page.screenshot({ path: 'test-output/docs.png', clip: { x: 0, y: 0, width: 1280, height: 2000 } })
})
