import type { FastifyPluginAsync } from 'fastify'
import { activityReadRoutes } from '../activity/index.ts'
import { checkinReadRoutes } from '../checkin/index.ts'
import { dayFeedbackReadRoutes } from '../day-feedback/index.ts'
import { insightReadRoutes } from '../insight/index.ts'
import { intentionReadRoutes } from '../intention/index.ts'
import { measurementReadRoutes } from '../measurement/index.ts'
import sleepReadRoutes from '../sleep/index.ts'
import statisticsRoutes from '../statistics/index.ts'

/**
 * Read-only access to the data others share with the caller: each domain's own read routes,
 * registered again under `/shared/:owner_id` with `shared: true`, so the viewer gets the owner's
 * answer from the same handler and query, after the share and scope check. Only GET routes are
 * registered here: anything else under this prefix is 404, so nothing can be written.
 */
const sharedReadRoutes: FastifyPluginAsync = async function sharedReadRoutes(app) {
  const prefix = '/shared/:owner_id'
  for (const plugin of [
    measurementReadRoutes,
    statisticsRoutes,
    sleepReadRoutes,
    checkinReadRoutes,
    dayFeedbackReadRoutes,
    activityReadRoutes,
    intentionReadRoutes,
    insightReadRoutes,
  ]) {
    await app.register(plugin, { prefix, shared: true })
  }
}

export default sharedReadRoutes
