/**
 * The `durable` file of a partition: where its last commit ends, so that
 *  - a read-only process sees exactly up to the writer's latest durable commit, never a batch
 *    written but not yet fdatasynced, and
 *  - recovery can tell damage inside acknowledged data (below the mark: CORRUPTED) from a torn
 *    tail (above it: truncated).
 * It is rewritten in place after every commit and never fsynced itself: after a power loss it
 * can only be older than the truth, which keeps both uses conservative.
 *
 * Two 32-byte slots: [0, 32) visible (what readers may see), [32, 64) synced (what fdatasync
 * covered). With sync: 'always' they are equal. Each slot: u32 magic "WHD1" | u32 CRC32C of
 * [8, 32) | u64 segment base | u64 data end position | u64 next offset.
 *
 * A third slot, [64, 96), is the boot stamp: u32 magic "WHB1" | u32 CRC32C of [72, 96) | the
 * first 24 bytes of SHA-256 of the boot id (FileIO.bootId). A writer with sync 'always' stamps
 * it once recovery has cleaned the log and clears it when a write or sync fails; other writers
 * clear it (recovery.ts, wantedStamp). A stamp of the current boot means every
 * write since then is in the page cache exactly as made: a prefix, never a gap with stale bytes
 * after it, so recovery need not read the preallocated tail. Older logs have no stamp: the same
 * as a stamp of another boot.
 */
import { createHash } from 'node:crypto'
import type { FileIO } from '../io/file-io.js'
import { readFully, writeFully } from '../io/full-io.js'
import { crc32c } from '../format/crc.js'
import { readU64, writeU64 } from '../format/batch.js'

const MAGIC = 0x57484431
const BOOT_MAGIC = 0x57484231
const SLOT = 32
const BOOT_AT = SLOT * 2

export interface HeadMark { segmentBase: number, position: number, nextOffset: number }

export class HeadFile {
  private readonly buf = Buffer.alloc(SLOT * 2)

  constructor (private readonly io: FileIO, private readonly fd: number) {}

  static encodeSlot (buf: Buffer, at: number, m: HeadMark): void {
    buf.writeUInt32BE(MAGIC, at)
    writeU64(buf, m.segmentBase, at + 8)
    writeU64(buf, m.position, at + 16)
    writeU64(buf, m.nextOffset, at + 24)
    buf.writeUInt32BE(crc32c(buf, at + 8, at + SLOT), at + 4)
  }

  /** Both slots at once: one small write per commit. */
  write (visible: HeadMark, synced: HeadMark | null): void {
    HeadFile.encodeSlot(this.buf, 0, visible)
    if (synced !== null) HeadFile.encodeSlot(this.buf, SLOT, synced)
    writeFully(this.io, this.fd, this.buf, 0, synced === null ? SLOT : SLOT * 2, 0)
  }

  /** The boot stamp: the current boot's, or cleared (null). */
  stampBoot (bootId: string | null): void {
    writeFully(this.io, this.fd, encodeBootStamp(bootId), 0, SLOT, BOOT_AT)
  }

  close (): void {
    try { this.io.close(this.fd) } catch {}
  }
}

export function readHead (io: FileIO, fd: number): { visible: HeadMark | null, synced: HeadMark | null } {
  const buf = Buffer.alloc(SLOT * 2)
  const n = readFully(io, fd, buf, 0, SLOT * 2, 0)
  const slot = (at: number): HeadMark | null => {
    if (n < at + SLOT || buf.readUInt32BE(at) !== MAGIC || buf.readUInt32BE(at + 4) !== crc32c(buf, at + 8, at + SLOT)) return null
    return { segmentBase: readU64(buf, at + 8), position: readU64(buf, at + 16), nextOffset: readU64(buf, at + 24) }
  }
  return { visible: slot(0), synced: slot(SLOT) }
}

let lastStamp: { bootId: string, buf: Buffer } | null = null
function encodeBootStamp (bootId: string | null): Buffer {
  if (bootId !== null && lastStamp?.bootId === bootId) return lastStamp.buf
  const buf = Buffer.alloc(SLOT)
  if (bootId === null) return buf
  lastStamp = { bootId, buf }
  buf.writeUInt32BE(BOOT_MAGIC, 0)
  createHash('sha256').update(bootId).digest().copy(buf, 8, 0, SLOT - 8)
  buf.writeUInt32BE(crc32c(buf, 8, SLOT), 4)
  return buf
}

/** True when the partition's boot stamp names `bootId`, the boot running now. */
export function stampedInBoot (io: FileIO, fd: number, bootId: string | null): boolean {
  if (bootId === null) return false
  const buf = Buffer.alloc(SLOT)
  if (readFully(io, fd, buf, 0, SLOT, BOOT_AT) !== SLOT) return false
  return buf.equals(encodeBootStamp(bootId))
}
