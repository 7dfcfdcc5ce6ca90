// Runs Python inside the real MicroPython VM (npm @micropython/micropython-webassembly-pyscript).
// Usage: [MPVM_LIB=DIR | MPVM_ROMFS=IMAGE] node tools/mpvm.mjs MODULE [ARG ...]
// Copies lib/ to /lib (see below for MPVM_LIB and MPVM_ROMFS), host_tests/portable/ to /tests, tools/vm/ and boards/common/ (the
// board modules' shared code, as a board has them at its top level: the bundle swap is tested
// here) to /lib and the object definitions of firmware/objects/ to /objects in the VM's
// in-memory filesystem, imports MODULE and calls MODULE.main([ARG, ...]) with the arguments
// as strings; the process exits with the integer main() returns (0 when it returns None), or
// 1 with the Python traceback when an exception escapes.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function copyTree(mp, hostDir, vmDir, suffix = ".py") {
  try { mp.FS.mkdir(vmDir); } catch (e) { /* exists already */ }
  for (const name of readdirSync(hostDir)) {
    const hostPath = join(hostDir, name);
    if (statSync(hostPath).isDirectory()) {
      if (name !== "__pycache__") copyTree(mp, hostPath, vmDir + "/" + name, suffix);
    } else if (name.endsWith(suffix)) {
      mp.FS.writeFile(vmDir + "/" + name, readFileSync(hostPath));
    }
  }
}

const [moduleName, ...args] = process.argv.slice(2);
if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(moduleName || "")) {
  console.error("usage: node tools/mpvm.mjs MODULE [ARG ...]");
  process.exit(2);
}
const mp = await loadMicroPython({
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
  linebuffer: true,
});
// MPVM_LIB names a folder of compiled .mpy files to load instead of lib/'s sources, as a
// board does after `make deploy`. MPVM_ROMFS names a ROMFS image (mpremote's builder, see
// tools/romfs.py) holding lib/ as .mpy, mounted at /rom as a board with a ROMFS partition
// mounts it, /rom/lib in sys.path before /lib: the image lies in memory outside the
// MicroPython heap (the VM's malloc, as flash is on a board), so its bytecode is run in
// place and the heap holds only what importing creates.
if (process.env.MPVM_ROMFS) {
  const image = readFileSync(process.env.MPVM_ROMFS);
  const at = mp._module._malloc(image.length);
  mp._module.HEAPU8.set(image, at);
  mp.runPython(`import sys, uctypes, vfs\nvfs.mount(vfs.VfsRom(uctypes.bytearray_at(${at}, ${image.length})), "/rom")\n` +
               `sys.path.insert(sys.path.index("/lib"), "/rom/lib")\ndel sys, uctypes, vfs`);
} else if (process.env.MPVM_LIB) copyTree(mp, process.env.MPVM_LIB, "/lib", ".mpy");
else copyTree(mp, join(root, "lib"), "/lib");
copyTree(mp, join(root, "tools", "vm"), "/lib");
copyTree(mp, join(root, "boards", "common"), "/lib");
copyTree(mp, join(root, "host_tests", "portable"), "/tests");
copyTree(mp, join(root, "firmware", "objects"), "/objects", ".json");
try {
  // A module may ask for STEPS separate calls of step(i) before main(): the VM collects
  // garbage only between calls, so heap figures read in one step are exact.
  mp.runPython(`import sys\nsys.path.append('/tests')\nimport ${moduleName}\n` +
               `_steps = getattr(${moduleName}, "STEPS", 0)`);
  const steps = mp.globals.get("_steps");
  for (let i = 0; i < steps; i++) mp.runPython(`${moduleName}.step(${i})`);
  // A JSON list of strings is also a Python list literal.
  mp.runPython(`_exit_code = ${moduleName}.main(${JSON.stringify(args)})`);
} catch (error) {
  if (error.name !== "PythonError") throw error;
  console.error(error.message);
  process.exit(1);
}
const exitCode = mp.globals.get("_exit_code");
process.exit(typeof exitCode === "number" ? exitCode : 0);
