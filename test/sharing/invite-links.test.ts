import { eq, sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { queryRows } from '../../db/client.ts'
import { users } from '../../db/schema/index.ts'
import { escapeHtml, pageCsp } from '../../routes/confirm-page.ts'
import { buildTestApp } from '../helpers/app.ts'
import { lastMail, userWithToken } from '../helpers/fixtures.ts'

// Mail scanners and link previews fetch every link in a message (HEAD and GET); only a person's
// click on the page's button may accept an invitation.
const EVIL_FIRST = '<script>alert(1)</script>'
const EVIL_LAST = '"><img src=x onerror=alert(2)>&'

t.test('escapeHtml leaves nothing that can end text or an attribute', async (t) => {
  t.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
  t.equal(
    pageCsp({ APP_URL: 'nowatch://app' }),
    "default-src 'none'; style-src 'sha256-" +
      pageCsp({ APP_URL: 'nowatch://app' }).split("'sha256-")[1].split("'")[0] +
      "'; form-action 'self' nowatch:; frame-ancestors 'none'; base-uri 'none'",
  )
  t.match(pageCsp({ APP_URL: 'https://app.example.com/open' }), /form-action 'self' https:\/\/app\.example\.com;/)
})

t.test('invitation links: HEAD and GET change nothing, the page POSTs, names are escaped', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app)
  const viewer = await userWithToken(app)
  await app.db.update(users).set({ firstName: EVIL_FIRST, lastName: EVIL_LAST }).where(eq(users.id, owner.user.id))
  const req = (who: { headers: Record<string, string> }, method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({ method, url, headers: who.headers, payload })

  function checkPage(t: Test, res: Awaited<ReturnType<typeof app.inject>>) {
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
    t.match(
      res.headers['content-security-policy'],
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action 'self' nowatch:;/,
    )
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.notMatch(res.body, /<script|<img|<[a-z]+ [^>]*onerror/i, 'no markup from a name survives')
    t.match(res.body, escapeHtml(EVIL_FIRST))
    t.match(res.body, escapeHtml(EVIL_LAST))
    t.notMatch(res.body, /<(script|link|img|iframe)|src="|href="|https?:\/\//i, 'nothing is loaded from anywhere')
    t.match(res.body, /<form method="post" action="\/v1\//)
  }

  t.test('a share invitation', async (t) => {
    const invite = await req(owner, 'POST', '/v1/sharing/invites', {
      email: viewer.user.email,
      scopes: ['measurement', 'checkin'],
    })
    t.equal(invite.statusCode, 201)
    const mail = await lastMail(app, viewer.user.email, 'share_invite')
    const link = mail?.text.match(/\/v1\/shared\/invites\/accept\?code=[A-Za-z0-9_-]+/)?.[0] as string
    const code = link.split('code=')[1]
    const status = async () =>
      (await queryRows<{ status: string }>(app.db, sql`select status from shares where id = ${invite.json().id}`))[0]
        .status

    const head = await app.inject({ method: 'HEAD', url: link })
    t.equal(head.statusCode, 200)
    t.equal(head.body, '')
    t.equal(await status(), 'pending', 'HEAD accepts nothing')

    const page = await app.inject({ method: 'GET', url: link, headers: { accept: 'text/html' } })
    checkPage(t, page)
    t.match(page.body, `<strong>${escapeHtml(viewer.user.email)}</strong>`)
    t.match(page.body, 'measurement, checkin')
    t.match(page.body, `<input type="hidden" name="code" value="${code}">`)
    t.equal(await status(), 'pending', 'GET accepts nothing')

    const wrong = await app.inject({
      method: 'POST',
      url: '/v1/shared/invites/accept',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      payload: 'code=not-the-code',
    })
    t.equal(wrong.statusCode, 404)
    t.match(wrong.headers['content-type'], /^text\/html/, 'a browser gets a page for a dead link')
    t.match(wrong.body, /This invitation is not valid/)

    const twice = await app.inject({
      method: 'POST',
      url: '/v1/shared/invites/accept',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `code=${code}&code=${code}`,
    })
    t.equal(twice.statusCode, 400)
    t.equal(twice.json().error, 'validation_failed')
    t.equal(await status(), 'pending')

    const post = await app.inject({
      method: 'POST',
      url: '/v1/shared/invites/accept',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `code=${code}`,
    })
    t.equal(post.statusCode, 303)
    t.equal(post.headers.location, `nowatch://app/shared/${invite.json().id}`)
    t.equal(await status(), 'active', 'the POST accepts')
    const after = await app.inject({ method: 'GET', url: link })
    t.equal(after.statusCode, 404, 'a used link is dead')
    t.equal(after.json().error, 'not_found')
  })

  t.test('a group invitation', async (t) => {
    const other = await userWithToken(app)
    const res = await req(owner, 'POST', `/v1/user/${owner.user.id}/group/invite`, { email: other.user.email })
    t.equal(res.statusCode, 200, res.body)
    const groupId = res.json()[0].id
    const mail = await lastMail(app, other.user.email, 'group_invite')
    const link = mail?.text.match(/\/v1\/group\/[0-9a-f-]+\/invite\/[A-Za-z0-9_-]+\/accept/)?.[0] as string
    const members = async () =>
      (
        await queryRows<{ n: number }>(
          app.db,
          sql`select count(*)::int as n from peer_group_members where group_id = ${groupId}`,
        )
      )[0].n

    t.equal((await app.inject({ method: 'HEAD', url: link })).statusCode, 200)
    t.equal(await members(), 1, 'HEAD joins nothing')
    const page = await app.inject({ method: 'GET', url: link })
    checkPage(t, page)
    t.match(page.body, 'a NOWATCH group of 1 member')
    t.match(page.body, `<form method="post" action="${link}">`)
    t.equal(await members(), 1, 'GET joins nothing')

    const post = await app.inject({
      method: 'POST',
      url: link,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '',
    })
    t.equal(post.statusCode, 303)
    t.equal(post.headers.location, `nowatch://app/groups/${groupId}`)
    t.equal(await members(), 2, 'the POST joins')
  })
})
