// The systems compared. Each has the same small interface:
//   open(dir, { warm }) -> { append(buf), appendBatch(bufs), read(i), replay(), replayBatched(), close() }
//     (read(i): the i-th record of the store, from 0)
//     every append/appendBatch resolves only once durable (one commit); read(i) is the i-th record
//     written since open; replay* walk everything and return { n, bytes }
//   crashChild(dir, bytes)   in a child process: append until `bytes` more, print "ready <end>", go on
//   recover(dir) -> { end, close() }   open after a crash and find the end
// `durable: false` marks a system that acknowledges before its data is on disk: it is shown, never
// counted as a peer to beat.
import writeahead from './writeahead.js'
import sqlite from './sqlite.js'
import level from './level.js'

export const WAL = writeahead
export const PEERS = [sqlite, level]
export const SYSTEMS = { writeahead, sqlite, level }
