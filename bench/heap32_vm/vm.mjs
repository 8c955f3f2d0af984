// What both drivers (driver.mjs, script.mjs) start with: the 32-bit MicroPython VM
// (WebAssembly, npm package @micropython/micropython-webassembly-pyscript) loaded with its
// output going to `written`, and a folder copied into its filesystem.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export async function loadVM(mjs, written) {
  const { loadMicroPython } = await import(pathToFileURL(mjs).href);
  return loadMicroPython({
    heapsize: 1024 * 1024,
    linebuffer: false,
    stdout: written,
    stderr: written,
  });
}

export function copyTree(mp, from, to) {
  mp.FS.mkdirTree(to);
  for (const name of readdirSync(from)) {
    const path = join(from, name);
    if (statSync(path).isDirectory()) copyTree(mp, path, `${to}/${name}`);
    else mp.FS.writeFile(`${to}/${name}`, readFileSync(path));
  }
}
