// Strict argument parsing for the bench scripts: a misspelt flag (or --help before there was one)
// used to be ignored, and so started a full run that rewrote the committed results.
import { parseArgs } from 'node:util'

/**
 * Parses process.argv against `options` (node:util parseArgs, strict). `--help`/`-h` prints
 * `usage` and exits 0; an unknown flag, a missing value or a bad number prints the error and
 * `usage` and exits 2. `numbers` names the string options that must be positive integers.
 */
export function benchArgs (usage, options, { positionals = false, numbers = [], args = process.argv.slice(2) } = {}) {
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true })
    for (const name of numbers) {
      const v = parsed.values[name]
      if (v !== undefined && !/^[1-9][0-9]*$/.test(v)) throw new Error(`--${name} must be a positive integer, not "${v}"`)
    }
  } catch (err) {
    console.error(`${err.message}\n\n${usage}`)
    process.exit(2)
  }
  if (parsed.values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  return parsed
}
