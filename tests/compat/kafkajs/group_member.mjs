// One kafkajs 2.2.4 consumer-group member in its own process, for test_groups.py: the
// kafkajs counterpart of group_member.py, speaking the same line protocol on stdout:
//   {"event": "assigned", "partitions": [..]}   after every rebalance (GROUP_JOIN)
//   {"event": "record", "partition": p, "offset": o, "value": "..."}
// "exit" on stdin (or stdin closing) disconnects cleanly (LeaveGroup); the tests SIGKILL it
// to simulate a crash.
//
// Usage: node group_member.mjs BOOTSTRAP TOPIC GROUP SESSION_MS

import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [bootstrap, topic, groupId, sessionMs] = process.argv.slice(2);

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const kafka = new Kafka({
  clientId: "weir-compat-kafkajs-member",
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ label, log }) => process.stderr.write(`[kafkajs ${label}] ${log.message}\n`),
});
const consumer = kafka.consumer({
  groupId,
  sessionTimeout: Number(sessionMs),
  heartbeatInterval: 500,
  rebalanceTimeout: 10000,
});
consumer.on(consumer.events.GROUP_JOIN, (event) => {
  const partitions = [...(event.payload.memberAssignment[topic] || [])].sort((a, b) => a - b);
  emit({ event: "assigned", partitions });
});

let closing = false;
async function close() {
  if (closing) return;
  closing = true;
  await consumer.disconnect();
  emit({ event: "closed" });
  process.exit(0);
}
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  if (chunk.split("\n").some((line) => line.trim() === "exit")) close();
});
process.stdin.on("end", close);

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    emit({
      event: "record",
      partition,
      offset: Number(message.offset),
      value: message.value ? message.value.toString() : "",
    });
  },
});
