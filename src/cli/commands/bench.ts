import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { CliError, EXIT_CODES_HELP } from '../errors.js'
import { packageRoot } from '../common.js'

export function register (program: Command): void {
  program.command('bench')
    .description('run the benchmark suite (bench/run.js of the package); arguments are passed through')
    .argument('[args...]', 'passed to bench/run.js, e.g. --quick or scenario names')
    .allowUnknownOption()
    .helpOption('-h, --help', 'display help for command (use -- --help for the suite\'s own)')
    .addHelpText('after', `
Runs \`node bench/run.js <args>\` from the package root, on the disk under bench/tmp; results go
to bench/results/. The exit code is the suite's.

Examples:
  $ writeahead bench --quick
  $ writeahead bench serial batch
${EXIT_CODES_HELP}`)
    .action(async (args: string[]) => {
      const root = packageRoot()
      const script = path.join(root, 'bench', 'run.js')
      if (!fs.existsSync(script)) {
        throw new CliError('UNAVAILABLE', `the benchmark suite is not installed: ${script} is missing (it ships with the source repository, not the npm package)`)
      }
      const child = spawn(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' })
      // The terminal sends SIGINT to the whole process group; wait for the suite to clean up.
      const ignore = (): void => {}
      process.on('SIGINT', ignore)
      try {
        const { code, signal } = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
          child.on('error', reject)
          child.on('exit', (c, s) => resolve({ code: c, signal: s }))
        })
        process.exitCode = code ?? (signal === null ? 1 : 128 + 2)
      } finally {
        process.off('SIGINT', ignore)
      }
    })
}
