/** Dates for journal tests (users and requests: `userWithToken` in fixtures.ts). */
export const daysAgo = (n: number, from = new Date()) => new Date(from.getTime() - n * 86_400_000)
