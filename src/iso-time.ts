/**
 * Strict ISO-8601 times for --from and WRITEAHEAD_FROM: Date.parse alone takes nearly anything
 * ('-1', '1.5', 'Dec 25', '2026-02-30') for a time, silently starting a read somewhere else.
 */
/** The ISO-8601 times --from accepts, as help text. */
export const ISO_TIME_HELP = 'YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]'

// YYYY-MM-DD, optionally THH:MM, :SS, a fraction (. or ,) and Z or an offset (±HH, ±HHMM, ±HH:MM).
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/

function daysIn (year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/**
 * An ISO-8601 date or date-time as milliseconds since the epoch, or null if `s` is not one (Date.parse
 * alone accepts nearly anything: '-1', '1.5', 'Dec 25', '2026-02-30'). As in JavaScript, a date alone
 * is midnight UTC and a date-time without Z or an offset is local time.
 */
export function parseIsoTime (s: string): number | null {
  const m = ISO_TIME.exec(s)
  if (m === null) return null
  const [, y, mo, d, h, mi, sec, frac, tz] = m as unknown as [string, string, string, string, string?, string?, string?, string?, string?]
  const year = Number(y)
  const month = Number(mo)
  if (month < 1 || month > 12 || Number(d) < 1 || Number(d) > daysIn(year, month)) return null
  let text = `${y}-${mo}-${d}`
  // Timestamps are whole milliseconds: a record is at or after 10:00:00.0005 if it is at or after
  // 10:00:00.001, so a finer fraction rounds up.
  const finer = frac !== undefined && /[1-9]/.test(frac.slice(3)) ? 1 : 0
  if (h !== undefined && mi !== undefined) {
    if (Number(h) > 23 || Number(mi) > 59 || (sec !== undefined && Number(sec) > 59)) return null
    text += `T${h}:${mi}:${sec ?? '00'}.${(frac ?? '').padEnd(3, '0').slice(0, 3)}`
    if (tz !== undefined) {
      if (tz === 'Z' || tz === 'z') {
        text += 'Z'
      } else {
        const oh = tz.slice(1, 3)
        const om = tz.length > 3 ? tz.slice(-2) : '00'
        if (Number(oh) > 23 || Number(om) > 59) return null
        text += `${tz[0]}${oh}:${om}`
      }
    }
  }
  const ms = Date.parse(text)
  return Number.isNaN(ms) ? null : ms + finer
}
