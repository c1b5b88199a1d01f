// kafkajs 2.2.4 against compacted topics of a running Weir broker, driven by
// tests/compat/test_compaction.py.
//
// Usage: node compaction.mjs BOOTSTRAP STEP [ARGS...]
//   read     TOPIC GROUP END   a consumer in group GROUP subscribes from the beginning and
//                              collects every record of partition 0 until it has seen the
//                              record at offset END-1 (the last one, in the active segment);
//                              prints {"records": [[offset, key, value|null], ...]}. The
//                              offsets have gaps where compaction removed records: kafkajs
//                              must skip them, not stall or re-read.
//   keyless  TOPIC             a record without a key must be refused with INVALID_RECORD
//                              (error 87, not retriable); a keyed record after it succeeds.
//   describe TOPIC             describeConfigs of the compaction settings; prints
//                              {"configs": {name: value}}.
//
// Prints one JSON object on stdout (kafkajs logs go to stderr); exits 1 with a message on
// the first failed check.

import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;

const [bootstrap, step, ...args] = process.argv.slice(2);
if (!bootstrap || !step) {
  console.error("usage: node compaction.mjs BOOTSTRAP STEP [ARGS...]");
  process.exit(2);
}

const kafka = new Kafka({
  clientId: "weir-compat-kafkajs-compaction",
  brokers: [bootstrap],
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, label, log }) => {
    process.stderr.write(`[kafkajs ${label} ${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
  },
});

class CheckFailed extends Error {}

function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

const READ_DEADLINE_MS = 30000;

const steps = {
  async read(topic, groupId, endText) {
    const end = Number(endText);
    const records = [];
    let resolveDone;
    const done = new Promise((resolve) => {
      resolveDone = resolve;
    });
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: 6000,
      heartbeatInterval: 500,
      rebalanceTimeout: 10000,
      maxWaitTimeInMs: 200,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          check(partition === 0, `record from partition ${partition}`);
          const offset = Number(message.offset);
          records.push([
            offset,
            message.key === null ? null : message.key.toString("latin1"),
            message.value === null ? null : message.value.toString("latin1"),
          ]);
          if (offset >= end - 1) resolveDone();
        },
      });
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new CheckFailed(
                `no record at offset ${end - 1} within ${READ_DEADLINE_MS} ms; got ${records.length}, last ${JSON.stringify(records.slice(-3))}`,
              ),
            ),
          READ_DEADLINE_MS,
        );
      });
      await Promise.race([done, timeout]);
      clearTimeout(timer);
    } finally {
      await consumer.disconnect();
    }
    return { records };
  },

  async keyless(topic) {
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      let refused = null;
      try {
        await producer.send({ topic, acks: -1, messages: [{ value: "no key" }] });
      } catch (e) {
        const types = [e.type, ...(e.errors || []).map((x) => x.type), e.originalError && e.originalError.type];
        refused = types.filter(Boolean);
      }
      check(refused !== null, "a keyless record in a compacted topic was accepted");
      check(refused.includes("INVALID_RECORD"), `keyless record refused with ${JSON.stringify(refused)}, expected INVALID_RECORD`);
      const ok = await producer.send({ topic, acks: -1, messages: [{ key: "kjs-key", value: "kjs-keyed-after-refusal" }] });
      check(ok.length === 1 && ok[0].errorCode === 0, `keyed record after the refusal: ${JSON.stringify(ok)}`);
      return { refused, keyed: { partition: ok[0].partition, baseOffset: ok[0].baseOffset } };
    } finally {
      await producer.disconnect();
    }
  },

  async describe(topic) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: topic }],
      });
      const configs = Object.fromEntries(cfg.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
      return { configs };
    } finally {
      await admin.disconnect();
    }
  },
};

try {
  const fn = steps[step];
  if (!fn) throw new CheckFailed(`unknown step ${step}`);
  const out = await fn(...args);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
} catch (e) {
  console.error(`kafkajs compaction step '${step}' failed: ${e instanceof CheckFailed ? "" : e.name + ": "}${e.message}`);
  if (!(e instanceof CheckFailed)) console.error(e.stack);
  process.exit(1);
}
