// @kafkajs/confluent-schema-registry 4.1.0 against Weir's schema registry, driven by
// tests/compat/test_schema_registry.py.
//
// Usage: node schema_registry.mjs BOOTSTRAP REGISTRY_URL TOPIC
//   Registers an Avro and a JSON Schema (subjects TOPIC-value and TOPIC-json), encodes
//   three records with each (Confluent's wire format), produces the Avro ones to TOPIC with
//   kafkajs, decodes every buffer back through the registry (schema by id), checks the
//   compatibility refusal of an evolution without a default, and prints what it did as
//   one JSON object (the Python side decodes the produced records with confluent-kafka).

import kafkajs from "kafkajs";
import registryPackage from "@kafkajs/confluent-schema-registry";

const { Kafka, logLevel } = kafkajs;
const { SchemaRegistry, SchemaType } = registryPackage;

const [bootstrap, url, topic] = process.argv.slice(2);
if (!bootstrap || !url || !topic) {
  console.error("usage: node schema_registry.mjs BOOTSTRAP REGISTRY_URL TOPIC");
  process.exit(2);
}

function check(condition, message) {
  if (!condition) {
    console.error(`check failed: ${message}`);
    process.exit(1);
  }
}

const registry = new SchemaRegistry({ host: url });
const avro = {
  type: "record",
  name: "Reading",
  namespace: "weir.node",
  fields: [
    { name: "sensor", type: "string" },
    { name: "value", type: "double" },
  ],
};
const { id: avroId } = await registry.register(
  { type: SchemaType.AVRO, schema: JSON.stringify(avro) },
  { subject: `${topic}-value` },
);
const json = {
  type: "object",
  properties: { sensor: { type: "string" }, value: { type: "number" } },
  required: ["sensor"],
};
const { id: jsonId } = await registry.register(
  { type: SchemaType.JSON, schema: JSON.stringify(json) },
  { subject: `${topic}-json` },
);
check(avroId !== jsonId, `distinct ids, got ${avroId} and ${jsonId}`);
check((await registry.getLatestSchemaId(`${topic}-value`)) === avroId, "latest id of the Avro subject");

const readings = [0, 1, 2].map((i) => ({ sensor: `s${i}`, value: i + 0.5 }));
const avroBuffers = await Promise.all(readings.map((r) => registry.encode(avroId, r)));
const jsonBuffers = await Promise.all(readings.map((r) => registry.encode(jsonId, r)));
for (const [buffers, id] of [[avroBuffers, avroId], [jsonBuffers, jsonId]]) {
  for (const buffer of buffers) {
    check(buffer[0] === 0 && buffer.readInt32BE(1) === id, `Confluent header with id ${id}`);
  }
}
// A fresh client decodes through the registry (GET /schemas/ids/{id}).
const reader = new SchemaRegistry({ host: url });
const decoded = await Promise.all([...avroBuffers, ...jsonBuffers].map((b) => reader.decode(b)));
check(JSON.stringify(decoded) === JSON.stringify([...readings, ...readings]), `decoded ${JSON.stringify(decoded)}`);

// An evolution without a default is refused (BACKWARD): the client raises.
const broken = { ...avro, fields: [...avro.fields, { name: "unit", type: "string" }] };
let refused = null;
try {
  await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(broken) }, { subject: `${topic}-value` });
} catch (error) {
  refused = String(error.message || error);
}
check(refused !== null, "an incompatible schema is refused");

const kafka = new Kafka({ clientId: "weir-compat-registry", brokers: [bootstrap], logLevel: logLevel.WARN });
const producer = kafka.producer();
await producer.connect();
await producer.send({ topic, messages: avroBuffers.map((value) => ({ value })) });
await producer.disconnect();

console.log(JSON.stringify({ avroId, jsonId, refused }));
