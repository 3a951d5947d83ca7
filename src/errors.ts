/**
 * One error class with stable string codes. Callers branch on `err.code`, never on messages:
 * messages may improve, codes never change meaning. Every code is listed in the README.
 */
export const ErrorCodes = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_OPTION: 'INVALID_OPTION',
  INVALID_RECORD: 'INVALID_RECORD',
  INVALID_OFFSET: 'INVALID_OFFSET',
  UNKNOWN_PARTITION: 'UNKNOWN_PARTITION',
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  OFFSET_OUT_OF_RANGE: 'OFFSET_OUT_OF_RANGE',
  OFFSET_TRIMMED: 'OFFSET_TRIMMED',
  PARTITIONS_REDUCED: 'PARTITIONS_REDUCED',
  CLOSED: 'CLOSED',
  READ_ONLY: 'READ_ONLY',
  LOCKED: 'LOCKED',
  CORRUPTED: 'CORRUPTED',
  NOT_A_WAL: 'NOT_A_WAL',
  SYNC_FAILED: 'SYNC_FAILED',
  PARTITION_FAILED: 'PARTITION_FAILED',
  DISK_FULL: 'DISK_FULL',
  IO_ERROR: 'IO_ERROR',
  GROUP_BUSY: 'GROUP_BUSY'
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export interface WalErrorDetails {
  partition?: number
  segment?: string
  position?: number
  offset?: number
  [key: string]: unknown
}

export class WalError extends Error {
  readonly code: ErrorCode
  readonly details: WalErrorDetails

  constructor (code: ErrorCode, message: string, details: WalErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'WalError'
    this.code = code
    this.details = details
  }

  static is (err: unknown, code?: ErrorCode): err is WalError {
    return err instanceof WalError && (code === undefined || err.code === code)
  }
}

// Small factories keep messages consistent across the code base.
export const invalidArgument = (msg: string, details?: WalErrorDetails) => new WalError('INVALID_ARGUMENT', msg, details)
export const invalidOption = (name: string, why: string) => new WalError('INVALID_OPTION', `option ${name}: ${why}`, { option: name })
export const invalidRecord = (why: string, details?: WalErrorDetails) => new WalError('INVALID_RECORD', `invalid record: ${why}`, details)
/** The message an error had before atRecord named its record: each boundary names it in its own terms. */
const unplaced = new WeakMap<WalError, string>()

/**
 * The same error, naming the record it is about: `record 3 of the batch` for appendBatch, `chunk
 * 1042 written to the stream` for a writable, whose internal batches mean nothing to its user.
 */
export function atRecord (err: WalError, index: number, where: string): WalError {
  const why = unplaced.get(err) ?? err.message
  const placed = new WalError(err.code, `${why} (${where.replace('#', String(index))})`, { ...err.details, index }, err.cause)
  unplaced.set(placed, why)
  return placed
}
export const invalidOffset = (offset: unknown) => new WalError('INVALID_OFFSET', `offset must be a non-negative safe integer, got ${String(offset)}`)
export const unknownPartition = (p: unknown, n: number) =>
  new WalError('UNKNOWN_PARTITION', typeof p === 'number'
    ? `unknown partition ${String(p)}: partitions are 0..${n - 1}`
    // '0' would otherwise read "unknown partition 0: partitions are 0..0".
    : `a partition is a number (0..${n - 1}), got ${typeof p === 'string' ? JSON.stringify(p) : typeof p}`, { partition: typeof p === 'number' ? p : undefined })
export const outOfRange = (partition: number, offset: number, start: number, end: number) =>
  new WalError('OFFSET_OUT_OF_RANGE', `offset ${offset} of partition ${partition} is outside [${start}, ${end})`, { partition, offset, start, end })
export const trimmed = (partition: number, offset: number, start: number) =>
  new WalError('OFFSET_TRIMMED', `offset ${offset} of partition ${partition} was trimmed; the first retained offset is ${start}`, { partition, offset, start })
export const closed = () => new WalError('CLOSED', 'the write-ahead log is closed')
export const readOnly = () => new WalError('READ_ONLY', 'the write-ahead log was opened with readOnly: true')
export const corrupted = (why: string, details: WalErrorDetails) => {
  const where = [
    details.partition === undefined ? '' : `partition ${details.partition}`,
    details.segment === undefined ? '' : `segment ${details.segment}`,
    details.position === undefined ? '' : `byte ${details.position}`
  ].filter(Boolean).join(', ')
  return new WalError('CORRUPTED', `corrupted data (${where}): ${why}`, details)
}

/** Maps an fs error raised on the write path to a stable code. */
export function fromIoError (err: unknown, what: string, details: WalErrorDetails = {}): WalError {
  if (err instanceof WalError) return err
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new WalError('DISK_FULL', `${what}: no space left on device`, details, err)
  return new WalError('IO_ERROR', `${what}: ${(err as Error)?.message ?? String(err)}`, details, err)
}
