// Node side of the end-to-end test: `node --experimental-websocket node_client.mjs MODE ...`.
// Prints one JSON object per line on stdout (the Python driver reads them).
//   produce URL TOPIC COUNT KEYS
//   consume URL GROUP TOPIC      (stops when stdin closes or says "stop")
//   errors URL
import { connect } from "../../client-wasm/pkg/index.js";
import { produce, consume, errors } from "./scenario.mjs";

const [mode, url, ...rest] = process.argv.slice(2);
const report = (object) => process.stdout.write(JSON.stringify(object) + "\n");

if (mode === "produce") {
  const [topic, count, keys] = rest;
  await produce(connect, url, topic, Number(count), Number(keys), report);
} else if (mode === "consume") {
  const [group, topic] = rest;
  let stop = false;
  process.stdin.on("data", (chunk) => {
    if (String(chunk).includes("stop")) stop = true;
  });
  process.stdin.on("end", () => (stop = true));
  await consume(connect, url, group, topic, () => stop, report);
} else if (mode === "errors") {
  report(await errors(connect, url));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
process.exit(0);
