// The node's heap in the 32-bit MicroPython VM (WebAssembly, npm package
// @micropython/micropython-webassembly-pyscript): run by bench/heap32.py.
//
//     node driver.mjs MICROPYTHON_MJS TREE HARNESS_DIR
//
// TREE (the node's .mpy files and main.py) is copied to /flash, the current directory, as on a
// Pico's filesystem; HARNESS_DIR (heap32_boot.py, machine.py) to /harness. Each step runs in its
// own runPython call and ends with gc.collect(): this VM collects only when control returns to
// JavaScript, and then precisely (from its roots, not the C stack). gc.mem_alloc() is read
// after each step (gc.mem_free() here counts 128 MiB of growable heap). The last line of
// stdout is a JSON object: heap in use (bytes) and qstr text (n_str_data_bytes) after each
// step, the node's link output (hex: its boot announcement and events) or {"error": "..."}.
import { copyTree, loadVM } from "./vm.mjs";

const [mjs, tree, harness] = process.argv.slice(2);
const result = {};
let out = []; // bytes the VM writes: the node's frames, or qstr_info's text
const written = (bytes) => {
  for (const b of bytes) out.push(b);
};
try {
  const mp = await loadVM(mjs, written);  // the board's link is stdout, as on a Pico's USB
  copyTree(mp, tree, "/flash");
  copyTree(mp, harness, "/harness");
  const inUse = () => {
    mp.runPython("_heap32_alloc = gc.mem_alloc()");
    return mp.globals.get("_heap32_alloc");
  };
  const qstrText = () => {
    out = [];
    mp.runPython("heap32_boot.qstr_info()");
    const m = /n_str_data_bytes=(\d+)/.exec(Buffer.from(out).toString("latin1"));
    if (!m) throw new Error("no n_str_data_bytes in micropython.qstr_info()");
    return Number(m[1]);
  };
  const step = (name, code) => {
    out = [];
    mp.runPython(`${code}; gc.collect()`);
    result[`${name}_output`] = Buffer.from(out).toString("hex");
    result[name] = inUse();
    result[`${name}_qstr_text`] = qstrText();
  };
  mp.runPython(
    "import gc, os, sys; sys.path.append('/harness'); os.chdir('/flash'); " +
      "import heap32_boot; heap32_boot.install(); _heap32_alloc = 0; gc.collect()",
  );
  inUse(); // the same statement as every measurement, so its own garbage is in every figure
  step("baseline", "pass");
  step("modules", "heap32_boot.modules()");
  step("booted", "heap32_boot.boot()");
  step("stepped", "heap32_boot.step()");
  // Each module the node imports only when needed (heap32_boot.LAZY): loaded on the booted
  // node, then let go as the node does (node.drop), each step ending in a collection.
  mp.runPython("_heap32_lazy = heap32_boot.lazy_names()");
  for (const name of JSON.parse(mp.globals.get("_heap32_lazy"))) {
    step(`lazy_${name}`, `heap32_boot.lazy_load(${JSON.stringify(name)})`);
    step(`dropped_${name}`, `heap32_boot.lazy_drop(${JSON.stringify(name)})`);
  }
  // The modules the node holds once all of those are let go, as booted: a Pico holds the
  // native code of those only (read last: this allocates).
  mp.runPython("_heap32_held = heap32_boot.held()");
  result.held = JSON.parse(mp.globals.get("_heap32_held"));
} catch (e) {
  // A PythonError carries the traceback; anything else may quote the whole minified VM.
  result.error = String(e && e.name === "PythonError" ? e.message : e).slice(0, 1500);
}
console.log(JSON.stringify(result));
process.exit(0); // the node's asyncio tasks are on JavaScript timers: never let them run
