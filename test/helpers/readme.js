// The README's fenced code blocks, so tests can run or check each snippet against the real thing.
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** -> [{ lang, line, code }] in README order. */
export function readmeBlocks () {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n')
  const blocks = []
  let open = null
  lines.forEach((l, i) => {
    const fence = /^```(\S*)\s*$/.exec(l)
    if (fence === null) { if (open !== null) open.code.push(l); return }
    if (open === null) open = { lang: fence[1], line: i + 1, code: [] }
    else { blocks.push({ ...open, code: open.code.join('\n') }); open = null }
  })
  return blocks
}

/** The one block whose code contains `marker` (fails loudly if there is not exactly one). */
export function readmeBlock (marker) {
  const found = readmeBlocks().filter((b) => b.code.includes(marker))
  if (found.length !== 1) throw new Error(`README: expected one code block containing ${JSON.stringify(marker)}, found ${found.length}`)
  return found[0]
}

/**
 * Runs a JS snippet as an ES module between `prelude` and `epilogue`, with `cwd` as its working
 * directory. The file is written inside the project, so `import ... from 'writeahead'` resolves
 * through package.json's exports (as for a user) and kafkajs or rxjs from node_modules.
 * -> { code, stdout, stderr, source }
 */
export function runSnippet (code, { cwd, prelude = '', epilogue = '', timeoutMs = 60_000 } = {}) {
  // Imports must come first in a module: hoist the snippet's own above the prelude.
  const isImport = (l) => /^import .* from .*$/.test(l)
  const all = [...prelude.split('\n'), ...code.split('\n')]
  const source = [...all.filter(isImport), ...all.filter((l) => !isImport(l)), epilogue].join('\n')
  const dir = path.join(ROOT, '.snippets')
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${process.pid}-${Math.random().toString(36).slice(2)}.mjs`)
  fs.writeFileSync(file, source)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); fs.rmSync(file, { force: true }); resolve({ code, stdout, stderr, source }) })
  })
}
