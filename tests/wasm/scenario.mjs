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

// A WebSocket wrapper for `connect(url, { WebSocket })` that can hold back what one socket
// receives and cut it: the reconnect scenario drops a connection after the gateway
// answered but before the client read the answers. Works with any WebSocket class
// (browsers, Node's global one).
export function flakyWebSocket(Base) {
  const control = { sockets: [], holding: null, sent: 0, held: 0 };
  class Flaky {
    constructor(url) {
      const ws = new Base(url);
      this.ws = ws;
      control.sockets.push(this);
      ws.onopen = (event) => this.onopen?.(event);
      ws.onclose = (event) => this.onclose?.(event);
      ws.onerror = (event) => this.onerror?.(event);
      ws.onmessage = (event) => {
        if (control.holding === this) {
          control.held++;
          return;
        }
        this.onmessage?.(event);
      };
    }
    get binaryType() {
      return this.ws.binaryType;
    }
    set binaryType(value) {
      this.ws.binaryType = value;
    }
    send(data) {
      if (control.holding === this) control.sent++;
      this.ws.send(data);
    }
    close(...args) {
      this.ws.close(...args);
    }
  }
  return { Flaky, control };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition, ms, what) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// reconnect: one warm-up send (producer id and partition counts known), then `count - 1`
// sends whose answers are held back; once the gateway has answered every request the
// client wrote, the connection is cut. The client reconnects and resends the
// unacknowledged batches with their original sequence numbers; every send must resolve,
// and the broker must hold each record once at the offset the client reports.
export async function reconnect(connect, url, topic, count, keys, report) {
  const { Flaky, control } = flakyWebSocket(globalThis.WebSocket);
  const client = await connect(url, { WebSocket: Flaky, backoffMs: 50, backoffMaxMs: 200 });
  const producer = client.producer({ acks: "all", idempotent: true });
  const record = (i) => ({ key: `k-${i % keys}`, value: `v-${i}`, headers: { seq: String(i) } });
  const first = await producer.send(topic, record(0));
  control.holding = control.sockets.at(-1);
  const sends = [];
  for (let i = 1; i < count; i++) sends.push(producer.send(topic, record(i)));
  // The sends above wrote their first batches synchronously; wait for every answer.
  await until(() => control.sent > 0 && control.held >= control.sent, 30000, "the answers");
  const cut = { sent: control.sent, held: control.held };
  control.holding.close();
  const placed = [{ seq: 0, ...first }];
  (await Promise.all(sends)).forEach((at, i) => placed.push({ seq: i + 1, ...at }));
  report({ produced: placed.length, resent: cut.sent, sockets: control.sockets.length, placed });
  client.close();
}

// isolation: a read_committed and a read_uncommitted consumer (no group) read a topic
// from the start. Phase 1 reports what each read (the uncommitted one until `all`
// records, the committed one until `committed` records and then for another 2 s, to catch
// anything it must not yield); after `proceed()` resolves (the test committed the open
// transaction), phase 2 reports what the committed one reads next (`released` records).
export async function isolation(connect, url, topic, counts, proceed, report) {
  const client = await connect(url);
  const committed = client.consumer({ topics: [topic], from: "earliest", isolation: "read_committed" });
  const uncommitted = client.consumer({ topics: [topic], from: "earliest" });
  const pending = new Map();
  const TIMEOUT = Symbol("timeout");
  const take = async (consumer, ms) => {
    if (!pending.has(consumer)) pending.set(consumer, consumer.next());
    const got = await Promise.race([pending.get(consumer), sleep(ms).then(() => TIMEOUT)]);
    if (got === TIMEOUT) return null;
    pending.delete(consumer);
    return text(got.value);
  };
  const read = async (consumer, want, graceMs) => {
    const values = [];
    const deadline = Date.now() + 30000;
    while (values.length < want && Date.now() < deadline) {
      const value = await take(consumer, 500);
      if (value !== null) values.push(value);
    }
    const graceEnd = Date.now() + graceMs;
    while (Date.now() < graceEnd) {
      const value = await take(consumer, graceEnd - Date.now());
      if (value !== null) values.push(value);
    }
    return values;
  };
  const all = await read(uncommitted, counts.all, 0);
  const stable = await read(committed, counts.committed, 2000);
  report({ phase: 1, uncommitted: all, committed: stable });
  await proceed();
  const released = await read(committed, counts.released, 0);
  report({ phase: 2, committed: released });
  client.close();
}

// oversized: 40 small sends to partition 0 with one record over the broker's
// message.max.bytes in the middle. The big one must reject with MESSAGE_TOO_LARGE; it
// leaves a gap in the partition's sequence, so the batches behind it are refused as out
// of order, held, and resent under a new producer id: every small send resolves, once.
export async function oversized(connect, url, topic, report) {
  const client = await connect(url);
  const producer = client.producer({ acks: "all", idempotent: true });
  const sends = [];
  let big = null;
  for (let i = 0; i < 40; i++) {
    if (i === 20) {
      big = producer.send(topic, { value: "x".repeat(1_100_000), partition: 0 }).then(
        () => "written",
        (error) => error.name,
      );
    }
    sends.push(producer.send(topic, { value: `s-${i}`, partition: 0 }));
  }
  const placed = (await Promise.all(sends)).map((at, i) => ({ seq: i, ...at }));
  report({ produced: placed.length, big: await big, placed });
  client.close();
}

// sasl: connect to a gateway that requires authentication with `sasl` ({ mechanism,
// username, password }), produce `count` records to partition 0 of `topic` and read them
// back with a group-less consumer; report {produced, read} or the connect error's
// {error: {name, message}}.
export async function authenticated(connect, url, topic, count, sasl, report) {
  let client;
  try {
    client = await connect(url, { sasl, reconnectAttempts: 1 });
  } catch (error) {
    report({ error: { name: error.name, message: error.message } });
    return;
  }
  const producer = client.producer({ acks: "all", idempotent: true });
  const values = [];
  for (let i = 0; i < count; i++) values.push(`${sasl.username}-${i}`);
  await Promise.all(values.map((value) => producer.send(topic, { value, partition: 0 })));
  const consumer = client.consumer({ topics: [topic], from: "earliest" });
  const read = [];
  for await (const record of consumer) {
    const value = text(record.value);
    if (values.includes(value)) read.push(value);
    if (read.length >= count) break;
  }
  await consumer.close();
  client.close();
  report({ produced: values.length, read });
}
