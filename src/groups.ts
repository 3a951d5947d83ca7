import { WalError, invalidArgument, invalidOffset } from './errors.js'

/** What a group needs from the log; kept narrow so groups stay a small module. */
export interface GroupHost {
  partitions: number
  offsets (p: number): { start: number, end: number }
  metaGet (name: string): Buffer | undefined
  /** Durable when resolved; throws at once when refused (closed, read-only), so a seek can tell. */
  metaSet (values: Map<string, Buffer>): Promise<number>
  metaNames (): Iterable<string>
  /** Live readers of this group move to the new position (seek). */
  onSeek (group: string, p: number, offset: number): void
}

export interface GroupPartitionInfo { partition: number, committed: number | null, lag: number }
export interface GroupInfo { name: string, partitions: GroupPartitionInfo[] }

const PREFIX = 'group/'

export function cursorKey (group: string, p: number): string {
  return `${PREFIX}${encodeURIComponent(group)}/${p}`
}

export function parseCursorKey (key: string): { group: string, partition: number } | null {
  if (!key.startsWith(PREFIX)) return null
  const rest = key.slice(PREFIX.length)
  const slash = rest.lastIndexOf('/')
  if (slash < 0) return null
  return { group: decodeURIComponent(rest.slice(0, slash)), partition: Number(rest.slice(slash + 1)) }
}

export function checkGroupName (name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 1000) throw invalidArgument('a group name must be a non-empty string of at most 1000 characters')
  // A lone surrogate has no UTF-8 form: cursorKey's encodeURIComponent would throw a bare URIError
  // from committed(), commit() and readable() alike.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { i++; continue }
    throw invalidArgument(`a group name must be well-formed Unicode: ${JSON.stringify(name)} holds a lone surrogate at ${i}`)
  }
  return name
}

/**
 * A consumer group's cursors, one per partition, stored in the meta log. A committed value is the
 * next offset to read (Kafka's convention), and it is durable once commit() resolves.
 */
export class Group {
  constructor (private readonly host: GroupHost, readonly name: string) {}

  private check (p: number): void {
    if (!Number.isInteger(p) || p < 0 || p >= this.host.partitions) {
      throw new WalError('UNKNOWN_PARTITION', `unknown partition ${String(p)}: partitions are 0..${this.host.partitions - 1}`, { partition: p })
    }
  }

  /** Stores `nextOffset` as the group's position in partition `p`; durable when resolved. */
  async commit (p: number, nextOffset: number): Promise<void> {
    await this.store(p, nextOffset)
  }

  /** Checks, then queues the meta commit at once (its place in the meta log's order is fixed here); throws if refused. */
  private store (p: number, nextOffset: number): Promise<number> {
    this.check(p)
    if (typeof nextOffset !== 'number' || !Number.isSafeInteger(nextOffset) || nextOffset < 0) throw invalidOffset(nextOffset)
    const { end } = this.host.offsets(p)
    if (nextOffset > end) throw new WalError('OFFSET_OUT_OF_RANGE', `cannot commit offset ${nextOffset} of partition ${p}: the log ends at ${end}`, { partition: p, offset: nextOffset })
    return this.host.metaSet(new Map([[cursorKey(this.name, p), Buffer.from(String(nextOffset))]]))
  }

  /** The committed next offset, or null when the group never committed in this partition. */
  committed (p: number): number | null {
    this.check(p)
    const v = this.host.metaGet(cursorKey(this.name, p))
    return v === undefined ? null : Number(v.toString())
  }

  /** Records between the committed position (or the start) and the end. */
  lag (p: number): number {
    const { start, end } = this.host.offsets(p)
    const c = this.committed(p)
    return Math.max(0, end - Math.max(c ?? start, start))
  }

  /** Moves the group to `offset` (durably, like commit, but also backwards) and repositions its live reader. */
  async seek (p: number, offset: number): Promise<void> {
    const stored = this.store(p, offset)
    // The reader moves before the write is awaited: a commit of its own issued meanwhile (its
    // last autoCommit, on break or close) then stores the new position, not the old one after it.
    this.host.onSeek(this.name, p, offset)
    await stored
  }

  info (): GroupInfo {
    const partitions: GroupPartitionInfo[] = []
    for (let p = 0; p < this.host.partitions; p++) partitions.push({ partition: p, committed: this.committed(p), lag: this.lag(p) })
    return { name: this.name, partitions }
  }
}

export function groupNames (host: GroupHost): string[] {
  const names = new Set<string>()
  for (const key of host.metaNames()) {
    const parsed = parseCursorKey(key)
    if (parsed !== null) names.add(parsed.group)
  }
  return [...names].sort()
}

/**
 * The lowest committed offset of any group in each partition (MAX_SAFE_INTEGER where there is no
 * group), from one listing of the cursors: retention asks for every partition on each tick, and a
 * listing per partition cost groups × partitions² lookups. A group with no cursor in a partition
 * has consumed nothing of it: it counts as at 0 there.
 */
export function lowestCommitted (host: GroupHost): number[] {
  const low = new Array<number>(host.partitions).fill(Number.MAX_SAFE_INTEGER)
  for (const name of groupNames(host)) {
    const group = new Group(host, name)
    for (let p = 0; p < low.length; p++) low[p] = Math.min(low[p], group.committed(p) ?? 0)
  }
  return low
}
