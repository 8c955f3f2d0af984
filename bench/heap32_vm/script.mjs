// Run one MicroPython function in the 32-bit VM (WebAssembly, npm package
// @micropython/micropython-webassembly-pyscript), for bench rows measured on 32 bits:
//
//     node script.mjs MICROPYTHON_MJS TREE MODULE REQUEST_JSON_FILE
//
// TREE (Python sources) is copied to /flash, the current directory and the first entry of
// sys.path; then MODULE.run(request) is called and its result printed as the last line of
// stdout, JSON, or {"error": "..."}. One runPython call: this VM collects garbage only when
// control returns to JavaScript, so gc.mem_alloc() differences inside it count allocations.
import { readFileSync } from "node:fs";
import { copyTree, loadVM } from "./vm.mjs";

const [mjs, tree, module, requestFile] = process.argv.slice(2);
let out = [];
const written = (bytes) => {
  for (const b of bytes) out.push(b);
};
let result;
try {
  const mp = await loadVM(mjs, written);
  copyTree(mp, tree, "/flash");
  mp.FS.writeFile("/flash/request.json", readFileSync(requestFile));
  mp.runPython(
    "import json, os, sys; os.chdir('/flash'); sys.path.insert(0, '/flash'); " +
      `import ${module}; _script_out = json.dumps(${module}.run(json.load(open('request.json'))))`,
  );
  result = mp.globals.get("_script_out");
} catch (e) {
  // A PythonError carries the traceback; anything else may quote the whole minified VM.
  const text = String(e && e.name === "PythonError" ? e.message : e).slice(0, 1500);
  result = JSON.stringify({ error: text, output: Buffer.from(out).toString().slice(-500) });
}
console.log(result);
process.exit(0);
