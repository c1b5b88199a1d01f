// kafkajs 2.2.4 over TLS and SASL against a running Weir broker, driven by
// tests/compat/test_kafkajs_security.py.
//
// Usage: node security.mjs BOOTSTRAP SECURITY_JSON STEP TOPIC
//   SECURITY_JSON  {"ca": PATH, "cert": PATH, "key": PATH,
//                   "sasl": {"mechanism": "plain|scram-sha-256|scram-sha-512",
//                            "username": U, "password": P}}
//                  (every field optional; "ca" turns TLS on)
//   round-trip     create TOPIC (1 partition), produce 20 records with acks=-1, consume them
//                  back with a consumer group from the beginning; prints what was read
//   auth-fails     connect an admin client; expects a failure and prints its error's name
//                  and type (e.g. KafkaJSSASLAuthenticationError)
//
// Prints one JSON object on stdout (kafkajs logs go to stderr); exits 1 with a message on
// the first failed check.

import fs from "node:fs";
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;

const [bootstrap, securityJson, step, topic] = process.argv.slice(2);
if (!bootstrap || !securityJson || !step || !topic) {
  console.error("usage: node security.mjs BOOTSTRAP SECURITY_JSON STEP TOPIC");
  process.exit(2);
}
const security = JSON.parse(securityJson);
const COUNT = 20;
const DEADLINE_MS = 60000;

function sslOptions() {
  if (!security.ca) return undefined;
  const ssl = { ca: [fs.readFileSync(security.ca, "utf-8")] };
  if (security.cert) ssl.cert = fs.readFileSync(security.cert, "utf-8");
  if (security.key) ssl.key = fs.readFileSync(security.key, "utf-8");
  return ssl;
}

const kafka = new Kafka({
  clientId: "weir-compat-kafkajs-security",
  brokers: [bootstrap],
  ssl: sslOptions(),
  sasl: security.sasl,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  logLevel: logLevel.NOTHING,
});

class CheckFailed extends Error {}

function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

async function roundTrip() {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer();
  await producer.connect();
  const sent = Array.from({ length: COUNT }, (_, i) => `${topic}/${i}`);
  try {
    const acked = await producer.send({ topic, acks: -1, messages: sent.map((value) => ({ value })) });
    check(acked.length === 1 && acked[0].errorCode === 0, `produce answered ${JSON.stringify(acked)}`);
  } finally {
    await producer.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 6000, heartbeatInterval: 500 });
  const read = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let resolve;
    const all = new Promise((r) => (resolve = r));
    await consumer.run({
      eachMessage: async ({ message }) => {
        read.push(message.value.toString());
        if (read.length >= COUNT) resolve();
      },
    });
    const timer = setTimeout(() => resolve(), DEADLINE_MS);
    await all;
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  check(JSON.stringify(read) === JSON.stringify(sent), `read back ${JSON.stringify(read)}`);
  return { read };
}

async function authFails() {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (e) {
    return { name: e.name, type: e.type || null, message: e.message };
  } finally {
    await admin.disconnect().catch(() => {});
  }
  throw new CheckFailed("connected, but the credentials are wrong");
}

try {
  let out;
  if (step === "round-trip") out = await roundTrip();
  else if (step === "auth-fails") out = await authFails();
  else throw new CheckFailed(`unknown step ${step}`);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
} catch (e) {
  process.stderr.write(`${e instanceof CheckFailed ? "check failed" : "error"}: ${e.name} ${e.message}\n${e.stack}\n`);
  process.exit(1);
}
