import { UAParser } from 'ua-parser-js'

/** The user agent parsed into browser, OS and device, in the WAVIoT history's shape. */
export function parseUserAgent(ua: string | null) {
  const r = new UAParser(ua ?? '').getResult()
  return {
    browser: { family: r.browser.name ?? null, version: r.browser.version ?? null },
    operating_system: { family: r.os.name ?? null, version: r.os.version ?? null },
    device: {
      brand: r.device.vendor ?? null,
      family: r.device.type ?? (ua ? 'Other' : null),
      model: r.device.model ?? null,
    },
  }
}
