import type { Command } from 'commander'
import { WalError, WriteAhead } from '../../index.js'
import { EXIT_CODES_HELP, usageError } from '../errors.js'
import { requireLog } from '../layout.js'
import { printable, table } from '../table.js'
import { out, parseNonNegative } from '../common.js'

interface GroupsOptions { partition?: number, to?: string, create?: boolean, json?: boolean }

export function register (program: Command): void {
  program.command('groups')
    .description('list consumer groups with their committed offsets and lag, or reset a group')
    .usage('<dir> [--json]\n       writeahead groups <dir> reset <group> --to <offset|earliest|latest> [-p <n>] [--create]')
    .argument('<dir>', 'log directory')
    .argument('[action]', 'reset')
    .argument('[group]', 'group to reset')
    .option('-p, --partition <n>', 'reset: only this partition (default: every partition; required with an offset)', parseNonNegative)
    .option('--to <position>', 'reset: earliest, latest or an offset')
    .option('--create', 'reset: create the group if it does not exist (without it, resetting an unknown group is an error)')
    .option('--json', 'list: print JSON')
    .addHelpText('after', `
A committed offset is the next offset the group will read. Listing opens the log read-only (safe
while a writer runs); reset takes the write lock and moves the group (also backwards), durably.
Reset refuses a group that does not exist, so a misspelt name does not start a new group: pass
--create to start one at --to. A name holding a control character (a newline, an escape code) or
starting with " is printed quoted and escaped as a JSON string; --json prints names as they are.

Examples:
  $ writeahead groups ./data
  $ writeahead groups ./data reset billing -p 0 --to 1200
  $ writeahead groups ./data reset billing --to earliest
  $ writeahead groups ./data reset audit --to latest --create
${EXIT_CODES_HELP}`)
    .action(async (dir: string, action: string | undefined, group: string | undefined, o: GroupsOptions) => {
      if (action === undefined || action === 'list') {
        if (group !== undefined) throw usageError(`unexpected argument '${group}'`)
        for (const [set, flag] of [[o.to, '--to'], [o.partition, '-p/--partition'], [o.create, '--create']] as const) {
          if (set !== undefined) throw usageError(`${flag} is only for 'groups <dir> reset <group>'`)
        }
        await list(dir, o)
      } else if (action === 'reset') {
        if (group === undefined) throw usageError('groups reset needs a group name')
        if (o.json !== undefined) throw usageError('--json is only for listing groups')
        await reset(dir, group, o)
      } else {
        throw usageError(`unknown groups action '${action}': use 'reset', or no action to list`)
      }
    })
}

async function list (dir: string, o: GroupsOptions): Promise<void> {
  requireLog(dir)
  const wal = await WriteAhead.open(dir, { readOnly: true })
  try {
    const groups = wal.groups().map((g) => {
      const partitions = g.partitions.map((x) => ({ partition: x.partition, committed: x.committed, end: wal.offsets(x.partition).end, lag: x.lag }))
      return { name: g.name, partitions, lag: partitions.reduce((n, x) => n + x.lag, 0) }
    })
    if (o.json === true) return await out(JSON.stringify(groups, null, 2) + '\n')
    if (groups.length === 0) return await out('no consumer groups\n')
    await out(table(['GROUP', 'PARTITION', 'COMMITTED', 'END', 'LAG'], groups.flatMap((g) => g.partitions.map((x) => [g.name, x.partition, x.committed, x.end, x.lag]))) +
      '\n' + table(['GROUP', 'TOTAL LAG'], groups.map((g) => [g.name, g.lag])))
  } finally {
    await wal.close()
  }
}

async function reset (dir: string, name: string, o: GroupsOptions): Promise<void> {
  if (o.to === undefined) throw usageError('groups reset needs --to <offset|earliest|latest>')
  const to = o.to
  if (to !== 'earliest' && to !== 'latest' && !/^\d+$/.test(to)) throw usageError(`--to must be earliest, latest or an offset, got '${to}'`)
  if (/^\d+$/.test(to) && o.partition === undefined) throw usageError('--to <offset> needs -p <partition>')
  requireLog(dir)
  const wal = await WriteAhead.open(dir)
  try {
    const group = wal.group(name)
    const names = wal.groups().map((g) => g.name)
    if (!names.includes(name) && o.create !== true) {
      throw usageError(`no consumer group '${printable(name)}' (${names.length === 0 ? 'the log has none' : `groups: ${names.map(printable).join(', ')}`}); pass --create to create it`)
    }
    const parts = o.partition === undefined ? Array.from({ length: wal.partitions }, (_, p) => p) : [o.partition]
    const rows: Array<[string, number, number | null, number]> = []
    for (const p of parts) {
      const { start, end } = wal.offsets(p)
      const target = to === 'earliest' ? start : to === 'latest' ? end : Number(to)
      if (!Number.isSafeInteger(target)) throw usageError(`--to offset ${to} is too large`)
      if (target < start) throw new WalError('OFFSET_TRIMMED', `offset ${target} of partition ${p} was trimmed; the first retained offset is ${start}`, { partition: p, offset: target, start })
      if (target > end) throw new WalError('OFFSET_OUT_OF_RANGE', `offset ${target} of partition ${p} is past its end ${end}`, { partition: p, offset: target, start, end })
      const before = group.committed(p)
      await group.seek(p, target)
      rows.push([name, p, before, target])
    }
    await out(table(['GROUP', 'PARTITION', 'BEFORE', 'AFTER'], rows))
  } finally {
    await wal.close()
  }
}
