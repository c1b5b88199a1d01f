// Weir's schema-aware helpers: the npm package's entry point (ES module, no bundler needed).
// A second, optional module beside weir-wasm: load it only on pages that produce or
// consume schema-framed values.
//
//   import { load, SchemaRegistry, topicSubject } from "./client-wasm-schema/pkg/index.js";
//   await load();
//   const registry = new SchemaRegistry("http://127.0.0.1:8081");
//   const value = await registry.encodeAvro(topicSubject("orders"), { id: 7, total: 12.5 });
//
// This file loads the WebAssembly module (from disk in Node, by URL in browsers; edge
// runtimes call `initSync({ module })` first).
import init from "./weir_wasm_schema.js";

export { initSync, SchemaRegistry, topicSubject } from "./weir_wasm_schema.js";

let loading;

/** Load the WebAssembly module once (a no-op after `initSync`); call before `new SchemaRegistry`. */
export function load() {
  if (!loading) {
    loading = (async () => {
      const url = new URL("./weir_wasm_schema_bg.wasm", import.meta.url);
      const isNode = typeof process !== "undefined" && !!process.versions?.node;
      if (isNode && url.protocol === "file:") {
        const { readFile } = await import("node:fs/promises");
        await init({ module_or_path: await readFile(url) });
      } else {
        await init({ module_or_path: url });
      }
    })();
  }
  return loading;
}
