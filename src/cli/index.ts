#!/usr/bin/env node
/**
 * The `writeahead` command line: one module per command under ./commands. Errors end as one line
 * `error: <message> (<CODE>)` on stderr with a non-zero exit code (see EXIT in ./errors.ts); a
 * stack trace only with --debug.
 */
import { Command, CommanderError } from 'commander'
import { CliError, EXIT, EXIT_CODES_HELP, reportError } from './errors.js'
import { packageVersion, stdoutClosed, stdoutGone } from './common.js'
import * as append from './commands/append.js'
import * as tail from './commands/tail.js'
import * as inspect from './commands/inspect.js'
import * as verify from './commands/verify.js'
import * as repair from './commands/repair.js'
import * as groups from './commands/groups.js'
import * as bench from './commands/bench.js'
import * as kafka from './commands/kafka.js'

export function buildProgram (): Command {
  const program = new Command('writeahead')
    .description('A durable, partitioned write-ahead log: append, tail, inspect, verify and repair logs from the shell.')
    .version(packageVersion(), '-V, --version')
    .option('--debug', 'print stack traces with errors')
    .configureOutput({ outputError: () => {} }) // reported by main(), in the CLI's one-line format
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText('after', `
Examples:
  $ seq 1 3 | writeahead append ./data -p 0
  $ writeahead tail ./data -p 0 --follow --group audit
  $ writeahead inspect ./data
  $ writeahead verify ./data && echo clean
  $ writeahead <command> --help
${EXIT_CODES_HELP}`)
  for (const m of [append, tail, inspect, verify, repair, groups, bench, kafka]) m.register(program)
  return program
}

export async function main (argv: string[] = process.argv): Promise<number> {
  const program = buildProgram()
  const cut = argv.indexOf('--')
  const debug = (cut < 0 ? argv : argv.slice(0, cut)).includes('--debug')
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK
      if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return EXIT.ERROR // help printed on stderr for a missing command
      return reportError(new CliError('INVALID_ARGUMENT', err.message.replace(/^error:\s*/, '')), debug)
    }
    // The log closed under a command whose reader went away: a consequence of the EPIPE, no error.
    if (stdoutGone()) return EXIT.OK
    return reportError(err, debug)
  }
}

// Someone piping into `head` closes stdout early: stop quietly, as Unix tools do, but close the
// command's log first, or its LOCK file stays behind. `tail --group` commits nothing then (what
// sat in the pipe may not have been read): see its --help.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (stdoutGone()) return // a later write failing on the same closed pipe
  if (err.code !== 'EPIPE') process.exit(reportError(err, process.argv.includes('--debug')))
  void stdoutClosed().then(() => process.exit(EXIT.OK))
})

const code = await main()
// After an error, exit now: a client library may still hold timers or retries (kafkajs keeps
// reconnecting for seconds), which would delay the exit and log after the error line.
if (code === EXIT.ERROR) process.exit(code)
process.exitCode = code
