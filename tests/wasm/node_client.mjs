// Node side of the end-to-end test: `node --experimental-websocket node_client.mjs MODE ...`.
// Prints one JSON object per line on stdout (the Python driver reads them).
//   produce URL TOPIC COUNT KEYS
//   consume URL GROUP TOPIC      (stops when stdin closes or says "stop")
//   errors URL
//   reconnect URL TOPIC COUNT KEYS
//   oversized URL TOPIC
//   isolation URL TOPIC ALL COMMITTED RELEASED   (phase 2 starts when stdin says "go")
//   sasl URL TOPIC COUNT MECHANISM USERNAME PASSWORD
import { connect } from "../../client-wasm/pkg/index.js";
import {
  produce, consume, errors, reconnect, isolation, oversized, authenticated,
} from "./scenario.mjs";

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
} else if (mode === "reconnect") {
  const [topic, count, keys] = rest;
  await reconnect(connect, url, topic, Number(count), Number(keys), report);
} else if (mode === "oversized") {
  const [topic] = rest;
  await oversized(connect, url, topic, report);
} else if (mode === "isolation") {
  const [topic, all, committed, released] = rest;
  const counts = { all: Number(all), committed: Number(committed), released: Number(released) };
  const proceed = () =>
    new Promise((resolve) => {
      process.stdin.on("data", (chunk) => {
        if (String(chunk).includes("go")) resolve();
      });
    });
  await isolation(connect, url, topic, counts, proceed, report);
} else if (mode === "sasl") {
  const [topic, count, mechanism, username, password] = rest;
  await authenticated(connect, url, topic, Number(count), { mechanism, username, password }, report);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
process.exit(0);
