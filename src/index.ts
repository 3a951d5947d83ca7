export { WriteAhead, retentionChannel, commitChannel, rotateChannel, prepareChannel, type SegmentInfo } from './write-ahead.js'
export { WalError, ErrorCodes, type ErrorCode, type WalErrorDetails } from './errors.js'
export type { WriteAheadOptions } from './options.js'
export type { FileIO } from './io/file-io.js'
export { nodeFileIO } from './io/file-io.js'
export type {
  AppendInput, AppendBatchOptions, Bytes, Checkpoint, HeadersInput, IterateOptions, KafkaHeaders,
  Offsets, RecordInput, RetentionOptions, SyncMode, WalHeader, WalRecord
} from './types.js'
export { verifyLog, salvageLog, type VerifyReport, type VerifyProblem, type VerifyOptions, type SalvageAction } from './verify.js'
