// The end-to-end scenarios, shared by the browser page (page.html) and Node
// (node_client.mjs): the same code drives the WASM client in both.
//
// produce: send `count` records value "v-<i>" key "k-<i % keys>" with a header, report
// each {partition, offset}. consume: join `group`, read until told to stop, report
// every record and commit as it goes.

const decoder = new TextDecoder();
const text = (bytes) => (bytes == null ? null : decoder.decode(bytes));

export async function produce(connect, url, topic, count, keys, report, options = {}) {
  const client = await connect(url, options);
  const producer = client.producer({ acks: "all", idempotent: true });
  const sends = [];
  for (let i = 0; i < count; i++) {
    sends.push(
      producer.send(topic, {
        key: `k-${i % keys}`,
        value: `v-${i}`,
        headers: { seq: String(i) },
      }),
    );
  }
  const placed = await Promise.all(sends);
  report({ produced: placed.length, placed });
  client.close();
}

export async function consume(connect, url, group, topic, shouldStop, report, options = {}) {
  const client = await connect(url, options);
  const consumer = client.consumer({ group, topics: [topic], from: "earliest" });
  report({ started: true });
  // `for await` waits for the next record; stopping is a close() from outside the loop,
  // after a last commit, which ends the loop.
  const stopper = (async () => {
    while (!shouldStop()) await new Promise((resolve) => setTimeout(resolve, 50));
    await consumer.commit();
    await consumer.close();
  })();
  let sinceCommit = 0;
  for await (const r of consumer) {
    report({
      records: [{
        partition: r.partition,
        offset: r.offset,
        key: text(r.key),
        value: text(r.value),
        seq: text(r.headers.seq),
      }],
    });
    if (++sinceCommit >= 50) {
      await consumer.commit();
      sinceCommit = 0;
    }
  }
  await stopper;
  client.close();
  report({ closed: true });
}

// Error names: a missing topic rejects with UNKNOWN_TOPIC_OR_PARTITION.
export async function errors(connect, url, options = {}) {
  const client = await connect(url, options);
  const admin = client.admin();
  const name = `e2e-exists-${Date.now()}`;
  await admin.createTopics([{ name, partitions: 1 }]);
  let duplicate = null;
  try {
    await admin.createTopics([{ name, partitions: 1 }]);
  } catch (e) {
    duplicate = e.name;
  }
  const producer = client.producer({ acks: "all", idempotent: true });
  let missing = null;
  try {
    await producer.send(name, { value: "x", partition: 7 });
  } catch (e) {
    missing = e.name;
  }
  const listed = (await admin.listTopics()).some((t) => t.name === name);
  client.close();
  return { duplicate, missing, listed };
}
