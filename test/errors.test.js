import test from 'ava'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

test('bad input gets a WalError with a stable code', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { partitions: 2, maxRecordBytes: 100 })
  const cases = [
    [() => wal.append(2, 'x'), 'UNKNOWN_PARTITION'],
    [() => wal.append(-1, 'x'), 'UNKNOWN_PARTITION'],
    [() => wal.append(0.5, 'x'), 'UNKNOWN_PARTITION'],
    [() => wal.append('0', 'x'), 'UNKNOWN_PARTITION'],
    [() => wal.append(0, 42), 'INVALID_RECORD'],
    [() => wal.append(0, null), 'INVALID_RECORD'],
    [() => wal.append(0, { key: 'k' }), 'INVALID_RECORD'],
    [() => wal.append(0, { value: 'v', headers: [[1, 'x']] }), 'INVALID_RECORD'],
    [() => wal.append(0, { value: 'v', timestamp: 'yesterday' }), 'INVALID_RECORD'],
    [() => wal.append(0, 'x'.repeat(101)), 'RECORD_TOO_LARGE'],
    [() => wal.appendBatch(0, 'notarray'), 'INVALID_ARGUMENT'],
    [() => wal.read(0, -1), 'INVALID_OFFSET'],
    [() => wal.read(0, 1.5), 'INVALID_OFFSET'],
    [() => wal.read(0, 0), 'OFFSET_OUT_OF_RANGE'],
    [() => wal.trimBefore(0, 'x'), 'INVALID_OFFSET']
  ]
  for (const [fn, code] of cases) {
    const err = await t.throwsAsync(fn())
    t.true(err instanceof WalError, `${code}: ${err}`)
    t.is(err.code, code, err.message)
  }
  await t.throwsAsync(wal.append('0', 'x'), { message: 'a partition is a number (0..1), got "0"' })
  t.is(await wal.append(0, 'still fine'), 0)
  await wal.close()
})

test('options that are not a plain object, and appendBatch options it does not know, are refused rather than ignored', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  // Read by key, a Date or a Map has none: each used to mean "no options" without a word.
  for (const opts of [new Date(), new Map([['live', true]]), [1]]) {
    t.throws(() => wal.readable(0, opts), { code: 'INVALID_OPTION' }, `readable ${String(opts)}`)
    t.throws(() => wal.writable(0, opts), { code: 'INVALID_OPTION' }, `writable ${String(opts)}`)
    await t.throwsAsync(wal.appendBatch(0, ['x'], opts), { code: 'INVALID_ARGUMENT' }, `appendBatch ${String(opts)}`)
  }
  // A misspelt `offsets` would append at the next offsets instead.
  const err = await t.throwsAsync(wal.appendBatch(0, ['x'], { offset: [5] }), { code: 'INVALID_OPTION' })
  t.is(err.details.option, 'offset')
  await t.throwsAsync(wal.appendBatch(0, ['x'], { checkpoints: { name: 'c', value: 'v' } }), { code: 'INVALID_OPTION' })
  t.is(wal.offsets(0).end, 0, 'nothing was appended')
  t.is(await wal.appendBatch(0, ['x'], Object.assign(Object.create(null), { offsets: [5] })), 5)
  await wal.close()
})

test('a batch over maxBatchBytes is refused and others in the same tick still commit', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { maxBatchBytes: 1000, maxRecordBytes: 500 })
  const ok = wal.append(0, 'before')
  const tooBig = wal.appendBatch(0, Array.from({ length: 5 }, () => 'x'.repeat(400)))
  const after = wal.append(0, 'after')
  await t.throwsAsync(tooBig, { code: 'BATCH_TOO_LARGE' })
  t.is(await ok, 0)
  t.is(await after, 1)
  t.is((await wal.read(0, 1)).value.toString(), 'after')
  await wal.close()
})

test('invalid options are refused', async (t) => {
  const dir = tmpDir(t)
  await t.throwsAsync(WriteAhead.open(dir, { sync: 'sometimes' }), { code: 'INVALID_OPTION' })
  await t.throwsAsync(WriteAhead.open(dir, { partitions: 0 }), { code: 'INVALID_OPTION' })
  await t.throwsAsync(WriteAhead.open(dir, { segmentBytes: 10 }), { code: 'INVALID_OPTION' })
  await t.throwsAsync(WriteAhead.open(dir, { bogus: true }), { code: 'INVALID_OPTION' })
  await t.throwsAsync(WriteAhead.open(''), { code: 'INVALID_ARGUMENT' })
})

test('boolean options must be booleans, and retention takes only the limits it knows', async (t) => {
  const dir = tmpDir(t)
  const cases = [
    [{ readOnly: 'yes' }, /option readOnly: must be true or false, got "yes"/],
    [{ readOnly: 1 }, /option readOnly: must be true or false, got 1/],
    [{ preallocate: 'no' }, /option preallocate: must be true or false, got "no"/],
    [{ preallocate: null }, /option preallocate: must be true or false, got null/],
    [{ retention: { maxByte: 10 } }, /option retention\.maxByte: unknown option/],
    [{ retention: { maxBytes: 10, maxAge: 5 } }, /option retention\.maxAge: unknown option/],
    [{ retention: { keepUnconsumed: 'true' } }, /option retention\.keepUnconsumed: must be true or false/],
    [{ retention: [] }, /option retention: must be an object/],
    // Each of these read as "no retention": a log told to keep little kept everything.
    [{ retention: null }, /option retention: must be an object .*\(leave it out for none\), got null/],
    [{ retention: new Date() }, /option retention: must be an object .*, got a Date/],
    [{ retention: new Map([['maxBytes', 10]]) }, /option retention: must be an object .*, got a Map/],
    [{ retention: { keepUnconsumed: true } }, /option retention\.keepUnconsumed: needs retention\.maxBytes or retention\.maxAgeMs/],
    [{ retention: { keepUnconsumed: true, maxBytes: undefined } }, /option retention\.keepUnconsumed: needs/],
    // The same for the options object itself: every option would silently be its default.
    [new Map([['partitions', 4]]), /option options: must be a plain object, got a Map/],
    [[], /option options: must be a plain object, got an array/]
  ]
  for (const [options, message] of cases) {
    const err = await t.throwsAsync(WriteAhead.open(dir, options), undefined, JSON.stringify(options))
    t.true(err instanceof WalError, String(err))
    t.is(err.code, 'INVALID_OPTION')
    t.regex(err.message, message)
  }
  const wal = await WriteAhead.open(dir, { readOnly: false, preallocate: false, retention: { maxBytes: 10, maxAgeMs: 5, keepUnconsumed: true } })
  t.false(wal.options.readOnly)
  t.false(wal.options.preallocate)
  t.deepEqual(wal.options.retention, { maxBytes: 10, maxAgeMs: 5, keepUnconsumed: true })
  await wal.close()
  // keepUnconsumed with either limit, false alone, and an object without a prototype are fine.
  for (const retention of [{ maxAgeMs: 5, keepUnconsumed: true }, { keepUnconsumed: false }, Object.assign(Object.create(null), { maxBytes: 10 })]) {
    const ok = await WriteAhead.open(dir, { retention })
    t.deepEqual(ok.options.retention, { ...retention })
    await ok.close()
  }
  const defaults = await WriteAhead.open(dir, { readOnly: undefined, preallocate: undefined })
  t.false(defaults.options.readOnly)
  t.true(defaults.options.preallocate)
  await defaults.close()
})

test('append after close is CLOSED; close is idempotent', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.append(0, 'x')
  await wal.close()
  await wal.close()
  await t.throwsAsync(wal.append(0, 'y'), { code: 'CLOSED' })
  await t.throwsAsync(wal.read(0, 0), { code: 'CLOSED' })
})

test('close waits for appends in flight', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  const pending = Array.from({ length: 50 }, (_, i) => wal.append(0, String(i)))
  await wal.close()
  t.deepEqual(await Promise.all(pending), Array.from({ length: 50 }, (_, i) => i))
  const again = await WriteAhead.open(dir)
  t.is(again.offsets(0).end, 50)
  await again.close()
})

test('partitions grow on reopen and never shrink', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { partitions: 2 })
  await wal.append(1, 'x')
  await wal.close()
  wal = await WriteAhead.open(dir)
  t.is(wal.partitions, 2)
  await wal.close()
  wal = await WriteAhead.open(dir, { partitions: 4 })
  t.is(wal.partitions, 4)
  t.is(await wal.append(3, 'y'), 0)
  await wal.close()
  await t.throwsAsync(WriteAhead.open(dir, { partitions: 3 }), { instanceOf: WalError, code: 'PARTITIONS_REDUCED' })
  wal = await WriteAhead.open(dir)
  t.is(wal.partitions, 4)
  t.is(wal.offsets(1).end, 1)
  await wal.close()
})

test('a path that is a file, or missing, is NOT_A_WAL for open, verify and salvage (not a bare ENOTDIR or ENOENT), and nothing is created', async (t) => {
  const fs = await import('node:fs')
  const dir = tmpDir(t)
  fs.mkdirSync(dir, { recursive: true })
  const file = `${dir}/afile`
  fs.writeFileSync(file, 'hi')
  const missing = `${dir}/missing`
  await t.throwsAsync(WriteAhead.open(file), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${file} is not a directory` })
  await t.throwsAsync(WriteAhead.verify(file), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${file} is not a directory` })
  await t.throwsAsync(WriteAhead.verify(missing), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${missing} does not exist` })
  await t.throwsAsync(WriteAhead.salvage(file), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${file} is not a directory` })
  await t.throwsAsync(WriteAhead.salvage(missing), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${missing} does not exist` })
  // salvage checks before it locks: the lock would leave its file in a directory holding no log.
  await t.throwsAsync(WriteAhead.salvage(dir), { instanceOf: WalError, code: 'NOT_A_WAL', message: `${dir} holds no write-ahead log` })
  t.deepEqual(fs.readdirSync(dir), ['afile'])
  t.is(fs.readFileSync(file, 'utf8'), 'hi')
})

test('a directory that cannot be created is IO_ERROR, and open does not hang on it', async (t) => {
  // Under /proc every mkdir fails with ENOENT although the parent exists, where Node's own
  // recursive mkdir retries for ever.
  const err = await t.throwsAsync(WriteAhead.open(`/proc/writeahead-test-${process.pid}/log`))
  t.true(err instanceof WalError)
  t.is(err.code, 'IO_ERROR')
  t.regex(err.message, /^creating \/proc\/writeahead-test-\d+\/log: ENOENT/)
})

test('a non-empty directory that is not a log is NOT_A_WAL', async (t) => {
  const fs = await import('node:fs')
  const dir = tmpDir(t)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(`${dir}/important.txt`, 'hi')
  await t.throwsAsync(WriteAhead.open(dir), { code: 'NOT_A_WAL' })
  t.is(fs.readFileSync(`${dir}/important.txt`, 'utf8'), 'hi')
})

test('a second writer in the same process is LOCKED', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir)
  await t.throwsAsync(WriteAhead.open(dir), { code: 'LOCKED' })
  await wal.close()
  const again = await WriteAhead.open(dir)
  await again.close()
})
