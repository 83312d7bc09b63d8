import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

/** Debian's chromium (.ci/run installs it when missing), driven by playwright-core. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** tap's `skip` option for a browser test: false, or why it cannot run here. */
export const skipWithoutChromium: false | string = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM}`

/**
 * Headless chromium with nothing of its own on the network: without the background-networking flags it
 * calls home at start, which this machine's closed network refuses many times over.
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  })
}
