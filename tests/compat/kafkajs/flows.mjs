// kafkajs 2.2.4 flows against a running Weir broker, driven by tests/compat/test_kafkajs.py.
//
// Usage: node flows.mjs BOOTSTRAP STEP [ARGS...]
//   admin   PREFIX          create/list/describe/grow/delete topics, describeCluster,
//                           describeConfigs, fetchTopicOffsets
//   produce TOPIC           acks -1, 1 and 0 (30 records each, explicit partitions of a
//                           3-partition topic); prints what the broker acknowledged
//   keyed   TOPIC           3 keys x 50 records through kafkajs's default (murmur2) partitioner
//   offsets TOPIC BASE_TS   fetchTopicOffsets / fetchTopicOffsetsByTimestamp on a topic the
//                           test filled with 100 records at BASE_TS + i*1000
//   errors  PREFIX          invalid topic name, invalid partition count, oversized record
//   idempotent TOPIC        idempotent producer (idempotent: true): 4 sends x 30 records over
//                           the 3 partitions of TOPIC; prints the acknowledged base offsets
//
// Prints one JSON object on stdout (kafkajs logs go to stderr); exits 1 with a message on
// the first failed check, so the Python side sees the exact reason.
// kafkajs consumers need consumer groups (not served yet), so data is read back by the
// Python side with confluent-kafka assign().

import kafkajs from "kafkajs";

const { Kafka, logLevel, CompressionTypes } = kafkajs;

const [bootstrap, step, ...args] = process.argv.slice(2);
if (!bootstrap || !step) {
  console.error("usage: node flows.mjs BOOTSTRAP STEP [ARGS...]");
  process.exit(2);
}

const kafka = new Kafka({
  clientId: "weir-compat-kafkajs",
  brokers: [bootstrap],
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, label, log }) => {
    process.stderr.write(`[kafkajs ${label} ${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
  },
});

class CheckFailed extends Error {}

function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

async function waitUntil(pred, timeoutMs, what) {
  // Bounded poll loop: never a fixed sleep.
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new CheckFailed(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expectError(promise, type, what) {
  try {
    await promise;
  } catch (e) {
    const types = [e.type, ...(e.errors || []).map((x) => x.type), e.originalError && e.originalError.type];
    if (Array.isArray(e.errors) && e.errors.length && e.errors[0].type) types.push(...e.errors.map((x) => x.type));
    check(types.includes(type), `${what}: expected ${type}, got ${e.name} ${types.join(",")} ${e.message}`);
    return;
  }
  throw new CheckFailed(`${what}: expected ${type}, but it succeeded`);
}

async function withAdmin(fn) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function withProducer(opts, fn) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, ...opts });
  await producer.connect();
  try {
    return await fn(producer);
  } finally {
    await producer.disconnect();
  }
}

const steps = {
  async admin(prefix) {
    return withAdmin(async (admin) => {
      const t1 = `${prefix}-one`;
      const t3 = `${prefix}-three`;
      const created = await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: t1, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: "retention.ms", value: "3600000" }] },
          { topic: t3, numPartitions: 3, replicationFactor: 1 },
        ],
      });
      check(created === true, `createTopics returned ${created}`);
      const again = await admin.createTopics({ topics: [{ topic: t1, numPartitions: 1 }] });
      check(again === false, `createTopics of an existing topic returned ${again}, kafkajs expects false`);

      const listed = await admin.listTopics();
      check(listed.includes(t1) && listed.includes(t3), `listTopics lacks new topics: ${listed}`);

      const md = await admin.fetchTopicMetadata({ topics: [t1, t3] });
      const parts = Object.fromEntries(md.topics.map((t) => [t.name, t.partitions]));
      check(parts[t1].length === 1 && parts[t3].length === 3, `partition counts ${JSON.stringify(parts)}`);
      for (const ps of Object.values(parts)) for (const p of ps) check(p.leader === 1, `leader ${p.leader}`);

      await admin.createPartitions({ topicPartitions: [{ topic: t1, count: 2 }] });
      await waitUntil(
        async () => (await admin.fetchTopicMetadata({ topics: [t1] })).topics[0].partitions.length === 2,
        15000,
        "t1 to grow to 2 partitions",
      );

      const cluster = await admin.describeCluster();
      check(cluster.brokers.length === 1 && cluster.brokers[0].nodeId === 1, `brokers ${JSON.stringify(cluster.brokers)}`);
      check(cluster.controller === 1, `controller ${cluster.controller}`);
      check(typeof cluster.clusterId === "string" && cluster.clusterId.length > 0, `clusterId ${cluster.clusterId}`);

      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: t1, configNames: ["retention.ms", "retention.bytes"] }],
      });
      const entries = Object.fromEntries(cfg.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
      check(entries["retention.ms"] === "3600000", `retention.ms ${entries["retention.ms"]}`);
      check(entries["retention.bytes"] === "-1", `retention.bytes ${entries["retention.bytes"]}`);

      const offsets = await admin.fetchTopicOffsets(t3);
      check(offsets.length === 3, `fetchTopicOffsets partitions ${offsets.length}`);
      for (const o of offsets) check(o.low === "0" && o.high === "0" && o.offset === "0", `empty offsets ${JSON.stringify(o)}`);

      await admin.deleteTopics({ topics: [t3] });
      await waitUntil(async () => !(await admin.listTopics()).includes(t3), 15000, "t3 deleted");
      check((await admin.listTopics()).includes(t1), "deleting t3 removed t1");
      return { clusterId: cluster.clusterId, broker: cluster.brokers[0], t1 };
    });
  },

  async produce(topic) {
    const acked = {};
    for (const acks of [-1, 1, 0]) {
      const messages = Array.from({ length: 30 }, (_, i) => ({
        value: `kjs/${acks}/${i}`,
        partition: i % 3,
        headers: { h: `hv${i}` },
      }));
      const res = await withProducer({}, (p) => p.send({ topic, acks, messages }));
      // acks -1/1: one RecordMetadata per partition with its base offset; acks 0: none to check.
      acked[acks] = res.map((r) => ({ partition: r.partition, baseOffset: r.baseOffset, errorCode: r.errorCode }));
      if (acks !== 0) {
        check(res.length === 3 && res.every((r) => r.errorCode === 0), `acks=${acks} result ${JSON.stringify(res)}`);
      }
    }
    const offsets = await withAdmin((admin) =>
      waitUntil(
        async () => {
          const o = await admin.fetchTopicOffsets(topic);
          return o.every((x) => x.high === "30") && o;
        },
        20000,
        "high watermark 30 on every partition",
      ),
    );
    return { acked, offsets };
  },

  async keyed(topic) {
    const keys = ["key-alpha", "key-beta", "key-gamma"];
    const messages = [];
    for (let i = 0; i < 50; i++) for (const k of keys) messages.push({ key: k, value: `${k}:${i}` });
    const res = await withProducer({}, (p) => p.send({ topic, acks: -1, messages }));
    check(res.every((r) => r.errorCode === 0), `keyed send ${JSON.stringify(res)}`);
    return { results: res };
  },

  async offsets(topic, baseTs) {
    const base = Number(baseTs);
    return withAdmin(async (admin) => {
      const o = await admin.fetchTopicOffsets(topic);
      check(o.length === 1 && o[0].low === "0" && o[0].high === "100", `fetchTopicOffsets ${JSON.stringify(o)}`);
      const at = async (ts) => (await admin.fetchTopicOffsetsByTimestamp(topic, ts))[0].offset;
      const exact = await at(base + 60000);
      const between = await at(base + 60500);
      const before = await at(base - 1);
      const after = await at(base + 1000 * 1000);
      check(exact === "60", `by timestamp exact: ${exact}`);
      check(between === "61", `by timestamp between: ${between}`);
      check(before === "0", `by timestamp before all: ${before}`);
      // kafkajs maps "no record at/after ts" (-1) to the high watermark.
      check(after === "100" || after === "-1", `by timestamp after all: ${after}`);
      return { exact, between, before, after };
    });
  },

  async deleteRecords(topic) {
    // kafkajs's admin.deleteTopicRecords (DeleteRecords v0): records below offset 3 of a
    // partition holding 5; an offset above the high watermark is refused.
    await withProducer({}, async (p) => {
      const messages = Array.from({ length: 5 }, (_, i) => ({ value: `kjs-del/${i}`, partition: 0 }));
      await p.send({ topic, acks: -1, messages });
    });
    return withAdmin(async (admin) => {
      // kafkajs finds the leaders in its admin's metadata cache, which starts empty.
      await admin.fetchTopicMetadata({ topics: [topic] });
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: "3" }] });
      const o = await admin.fetchTopicOffsets(topic);
      check(o.length === 1 && o[0].low === "3" && o[0].high === "5", `after deleteTopicRecords ${JSON.stringify(o)}`);
      // kafkajs wraps the partitions' errors in one KafkaJSDeleteTopicRecordsError.
      let refused = null;
      try {
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: "9" }] });
      } catch (e) {
        // The retrier gives it back wrapped in a KafkaJSNonRetriableError.
        const inner = e.partitions ? e : e.originalError || e.cause || {};
        refused = (inner.partitions || []).map((p) => p.error && p.error.type);
      }
      check(
        refused && refused.includes("OFFSET_OUT_OF_RANGE"),
        `deleteTopicRecords above the high watermark: ${JSON.stringify(refused)}`,
      );
      return { low: o[0].low, high: o[0].high };
    });
  },

  async idempotent(topic) {
    // kafkajs's idempotent producer: InitProducerId, then producer id/epoch and per-partition
    // sequences on every batch (acks must be -1, one request in flight).
    const acked = [];
    await withProducer({ idempotent: true, maxInFlightRequests: 1 }, async (p) => {
      for (let round = 0; round < 4; round++) {
        const messages = Array.from({ length: 30 }, (_, i) => ({
          value: `kjs-idem/${round}/${i}`,
          partition: i % 3,
        }));
        const res = await p.send({ topic, acks: -1, messages });
        check(res.length === 3 && res.every((r) => r.errorCode === 0), `round ${round}: ${JSON.stringify(res)}`);
        for (const r of res) acked.push({ round, partition: r.partition, baseOffset: r.baseOffset });
      }
    });
    return { acked };
  },

  async errors(prefix) {
    await withAdmin(async (admin) => {
      await expectError(
        admin.createTopics({ topics: [{ topic: "bad topic!", numPartitions: 1 }] }),
        "INVALID_TOPIC_EXCEPTION",
        "create 'bad topic!'",
      );
      await expectError(
        admin.createTopics({ topics: [{ topic: `${prefix}-zero`, numPartitions: 0 }] }),
        "INVALID_PARTITIONS",
        "create with 0 partitions",
      );
      await admin.createTopics({ topics: [{ topic: `${prefix}-big`, numPartitions: 1 }], waitForLeaders: true });
    });
    await withProducer({ retry: { retries: 0 } }, async (p) => {
      const big = Buffer.alloc(1_200_000, 0x61);
      await expectError(
        p.send({ topic: `${prefix}-big`, acks: -1, compression: CompressionTypes.None, messages: [{ value: big }] }),
        "MESSAGE_TOO_LARGE",
        "1.2 MB record",
      );
      const ok = await p.send({ topic: `${prefix}-big`, acks: -1, messages: [{ value: "small" }] });
      check(ok[0].errorCode === 0 && ok[0].baseOffset === "0", `small record after the big one: ${JSON.stringify(ok)}`);
    });
    return { ok: true };
  },
};

try {
  const fn = steps[step];
  if (!fn) throw new CheckFailed(`unknown step ${step}`);
  const out = await fn(...args);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
} catch (e) {
  console.error(`kafkajs flow '${step}' failed: ${e instanceof CheckFailed ? "" : e.name + ": "}${e.message}`);
  if (!(e instanceof CheckFailed)) console.error(e.stack);
  process.exit(1);
}
