// Weir's WASM client: the npm package's entry point (ES module, no bundler needed).
//
//   import { connect } from "./client-wasm/pkg/index.js";
//   const client = await connect("ws://127.0.0.1:9093");
//
// This file loads the WebAssembly module (from disk in Node, by URL in browsers; edge
// runtimes call `initSync({ module })` first) and makes consumers async-iterable.
import init, * as wasm from "./weir_wasm.js";

export { initSync } from "./weir_wasm.js";
export { Client, Producer, Consumer, Admin } from "./weir_wasm.js";

let loading;

/** Load the WebAssembly module once (a no-op after `initSync`). */
export function load() {
  if (!loading) {
    loading = (async () => {
      const url = new URL("./weir_wasm_bg.wasm", import.meta.url);
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

/**
 * Connect to a Weir gateway, e.g. `await connect("ws://127.0.0.1:9093")`.
 * Options: `WebSocket` (constructor; default globalThis.WebSocket), `backoffMs`,
 * `backoffMaxMs`, `reconnectAttempts` (0 = retry forever), `sasl` (`{ mechanism, username,
 * password }` for a gateway that requires authentication).
 */
export async function connect(url, options = {}) {
  await load();
  return wasm.connect(url, options);
}

// `for await (const record of consumer)`: one record per step; breaking out does not close
// the consumer (call `consumer.close()`), so a commit after the loop still works.
wasm.Consumer.prototype[Symbol.asyncIterator] = function () {
  return {
    next: async () => {
      const value = await this.next();
      return value === undefined ? { done: true, value: undefined } : { done: false, value };
    },
    return: async () => ({ done: true, value: undefined }),
  };
};
