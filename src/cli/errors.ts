/**
 * How the CLI ends: one line `error: <message> (<CODE>)` on stderr and a non-zero exit code; a
 * stack trace only with --debug.
 */
import { WalError } from '../index.js'

/** Exit codes, as `diff` and `grep` use them: 1 means "looked and found a problem", 2 "could not". */
export const EXIT = {
  OK: 0,
  /** verify found corruption (also after a repair); repair declined at the prompt. */
  PROBLEM: 1,
  /** Any error: bad arguments, not a log, locked, I/O. */
  ERROR: 2
} as const

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  verify (or the check after repair) found corruption; repair declined at the prompt
  2  error: one line "error: <message> (<CODE>)" on stderr; add --debug for a stack trace`

/**
 * An error of the CLI itself. Its code is a WalError code where one fits (INVALID_ARGUMENT for
 * arguments the parser rejects, CORRUPTED), else UNAVAILABLE: an optional component (the Kafka
 * connector, the benchmark suite) is not installed.
 */
export class CliError extends Error {
  constructor (readonly code: string, message: string, readonly exitCode: number = EXIT.ERROR) {
    super(message)
    this.name = 'CliError'
  }
}

export const usageError = (message: string): WalError => new WalError('INVALID_ARGUMENT', message)

function codeOf (err: unknown): string {
  if (err instanceof WalError || err instanceof CliError) return err.code
  const errno = (err as NodeJS.ErrnoException | null)?.code
  if (typeof errno === 'string') {
    if (errno === 'ENOSPC' || errno === 'EDQUOT') return 'DISK_FULL'
    return 'IO_ERROR'
  }
  return 'INTERNAL'
}

function oneLine (s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim()
}

/** Prints the error as the CLI reports it and returns the exit code to use. */
export function reportError (err: unknown, debug: boolean): number {
  const message = err instanceof Error ? err.message : String(err)
  if (debug) {
    let e: unknown = err
    for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
      process.stderr.write(`${depth === 0 ? '' : 'caused by: '}${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
      if (e instanceof WalError && Object.keys(e.details).length > 0) process.stderr.write(`details: ${JSON.stringify(e.details)}\n`)
      e = e instanceof Error ? e.cause : undefined
    }
  }
  process.stderr.write(`error: ${oneLine(message)} (${codeOf(err)})\n`)
  return err instanceof CliError ? err.exitCode : EXIT.ERROR
}
