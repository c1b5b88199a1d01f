// Node side of test_wasm_schema.py: the schema helpers loaded from disk (no bundler, the
// global fetch of Node 20+). Prints one JSON object on stdout.
//   node schema_node.mjs REGISTRY_URL TOPIC VALUE_JSON BAD_VALUE_JSON
import { load, SchemaRegistry, topicSubject } from "../../client-wasm-schema/pkg/index.js";

const [url, topic, value, badValue] = process.argv.slice(2);
const failure = (error) => ({ name: error.name, message: error.message });
const out = {};
try {
  await load();
  const registry = new SchemaRegistry(url, { latestTtlMs: 0 });
  const subject = topicSubject(topic);
  out.latest = await registry.latest(subject);
  const framed = await registry.encodeAvro(subject, JSON.parse(value));
  out.framed = Array.from(framed);
  out.decoded = await registry.decode(framed);
  out.rejected = await registry.encodeAvro(subject, JSON.parse(badValue)).then(
    () => null,
    failure,
  );
  out.badUrl = (() => {
    try {
      new SchemaRegistry("ftp://x");
      return null;
    } catch (error) {
      return failure(error);
    }
  })();
} catch (error) {
  out.error = failure(error);
}
process.stdout.write(JSON.stringify(out) + "\n");
