import { channel } from 'node:diagnostics_channel'

/**
 * Instrumentation through node:diagnostics_channel (as undici does): free when nobody listens,
 * and no logging policy imposed on the application.
 *  - writeahead:commit     { dir, partition, batches, bytes, synced }   after a commit is published
 *  - writeahead:rotate     { dir, partition, segment, prepared }        after a new segment is durable
 *  - writeahead:retention  { dir, partition, start, reason }            after retention or trimBefore deleted segments
 *  - writeahead:prepare    { dir, partition, bytes, ms, ok }            a background zero-fill of the next segment ended
 */
export const commitChannel = channel('writeahead:commit')
export const rotateChannel = channel('writeahead:rotate')
export const retentionChannel = channel('writeahead:retention')
export const prepareChannel = channel('writeahead:prepare')
