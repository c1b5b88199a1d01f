// kafkajs 2.2.4 consumer groups against a running Weir broker, driven by test_groups.py.
//
// Usage: node groups.mjs BOOTSTRAP TOPIC GROUP
// Starts two kafkajs consumers in one group on TOPIC (6 partitions), waits until both hold
// partitions and together hold all six, and prints {"assignments": [[..], [..]]}. Exits 1
// with a message if that does not happen within the deadline.

import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const [bootstrap, topic, groupId] = process.argv.slice(2);
const DEADLINE_MS = 60000;

const kafka = new Kafka({
  clientId: "weir-compat-kafkajs-groups",
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ label, log }) => process.stderr.write(`[kafkajs ${label}] ${log.message}\n`),
});

const assignments = [[], []];
const consumers = [0, 1].map((index) => {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    assignments[index] = event.payload.memberAssignment[topic] || [];
  });
  return consumer;
});

function done() {
  const all = assignments.flat().sort((a, b) => a - b);
  return assignments.every((a) => a.length > 0) && JSON.stringify(all) === JSON.stringify([0, 1, 2, 3, 4, 5]);
}

const start = Date.now();
for (const consumer of consumers) {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => {} });
}
while (!done()) {
  if (Date.now() - start > DEADLINE_MS) {
    console.error(`no split within ${DEADLINE_MS} ms: ${JSON.stringify(assignments)}`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
console.log(JSON.stringify({ assignments }));
await Promise.all(consumers.map((c) => c.disconnect()));
process.exit(0);
