/**
 * Python for the tests that check recap against files real NumPy and h5py write or read:
 * the first interpreter that imports the modules asked for (Debian's /usr/bin/python3 has
 * h5py, a pyenv one may have only NumPy), or null when none does, so the test is skipped
 * with a message instead of failing on a machine without them.
 * @module
 */

const found = new Map<string, string | null>();

/**
 * A python3 that imports every module listed, or null (with a note on stderr, once).
 * @param modules E.g. `["numpy"]` or `["numpy", "h5py"]`.
 * @returns The interpreter's path or name.
 */
export function pythonWith(modules: readonly string[]): string | null {
  const key = modules.join(",");
  if (found.has(key)) return found.get(key)!;
  let python: string | null = null;
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const out = new Deno.Command(py, {
        args: ["-c", modules.map((m) => `import ${m}`).join("; ")],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (out.success) {
        python = py;
        break;
      }
    } catch { /* not installed */ }
  }
  if (python === null) console.error(`note: no python3 with ${key}: its tests are skipped`);
  found.set(key, python);
  return python;
}

/**
 * Runs a Python script and returns its standard output; throws with its standard error when
 * it fails.
 * @param python The interpreter (from {@linkcode pythonWith}).
 * @param script The script's text.
 * @param args Its arguments (`sys.argv[1:]`).
 * @returns What it printed.
 */
export function runPython(python: string, script: string, args: readonly string[] = []): string {
  const res = new Deno.Command(python, { args: ["-c", script, ...args] }).outputSync();
  const text = new TextDecoder();
  if (!res.success) throw new Error(`python failed: ${text.decode(res.stderr)}`);
  return text.decode(res.stdout);
}
