// TypeScript declarations of Weir's WASM client (client-wasm/pkg/index.js).

/** Bytes or text: strings are encoded as UTF-8. */
export type Bytes = string | Uint8Array;

export interface ConnectOptions {
  /** A WebSocket constructor (e.g. the `ws` package in Node 20); default: globalThis.WebSocket. */
  WebSocket?: unknown;
  /** First reconnect delay in ms (default 100); doubles up to `backoffMaxMs`. */
  backoffMs?: number;
  /** Largest reconnect delay in ms (default 10000). */
  backoffMaxMs?: number;
  /** Give up after this many failed reconnects in a row; 0 (default) retries forever. */
  reconnectAttempts?: number;
  /** Credentials for a gateway that requires SASL authentication (edge protocol 3). SCRAM
   * runs in the client: the password never leaves it. A refused authentication rejects
   * with name `SASL_AUTHENTICATION_FAILED` and is not retried. */
  sasl?: SaslOptions;
}

export interface SaslOptions {
  mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";
  username: string;
  password: string;
}

export interface ProducerOptions {
  /** "all" (default, also -1) or 1 / "leader". */
  acks?: "all" | "leader" | 1 | -1;
  /** Idempotent producer (default true; needs acks "all"). With a gateway speaking edge
   * protocol 2 the client owns the producer id and sequence numbers: records whose
   * acknowledgement a lost connection swallowed are resent after the reconnect and
   * written once. */
  idempotent?: boolean;
}

export interface OutgoingRecord {
  key?: Bytes | null;
  value?: Bytes | null;
  headers?: Record<string, Bytes | null> | Array<[string, Bytes | null]>;
  /** Explicit partition; default: murmur2(key) like Kafka's default partitioner. */
  partition?: number;
  /** CreateTime in ms (or a Date); default: the broker's clock. */
  timestamp?: number | Date;
}

export interface RecordMetadata {
  partition: number;
  offset: number;
}

export interface ConsumerOptions {
  /** Consumer group (server-side assignment, KIP-848); omit to read every partition. */
  group?: string;
  topics: string[];
  /** Where to start without a committed offset (default "latest"). */
  from?: "earliest" | "latest";
  /** Kafka's isolation.level (default "read_uncommitted"). "read_committed" never yields a
   * record of an aborted transaction nor anything past the last stable offset (an open
   * transaction holds it back); it needs a gateway speaking edge protocol 2, else
   * `next()` rejects with UNSUPPORTED_VERSION. */
  isolation?: IsolationLevel;
}

export type IsolationLevel = "read_uncommitted" | "read_committed";

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array | null>;
  timestamp: number;
}

export interface TopicPosition {
  topic: string;
  partition: number;
  offset: number;
}

export interface TopicDescription {
  name: string;
  partitions: number;
  internal: boolean;
}

export interface NewTopic {
  name: string;
  partitions?: number;
  replicationFactor?: number;
}

/** Errors reject as `Error`s whose `name` is the Kafka error name (e.g.
 * "UNKNOWN_TOPIC_OR_PARTITION"), "NETWORK_EXCEPTION" for a lost connection (or a closed
 * client), "INVALID_ARGUMENT", or "BUFFER_EXHAUSTED" (100,000 records waiting to be sent);
 * `code` is Kafka's numeric error code (-1 if none). */
export interface WeirError extends Error {
  code: number;
}

export declare class Producer {
  send(topic: string, record: OutgoingRecord | Bytes): Promise<RecordMetadata>;
}

export declare class Consumer implements AsyncIterable<ConsumedRecord> {
  [Symbol.asyncIterator](): AsyncIterator<ConsumedRecord>;
  /** The next record, or undefined once closed. */
  next(): Promise<ConsumedRecord | undefined>;
  /** Commit the offsets after every record yielded so far. */
  commit(): Promise<void>;
  close(): Promise<void>;
  positions(): TopicPosition[];
}

export declare class Admin {
  listTopics(): Promise<TopicDescription[]>;
  createTopics(topics: NewTopic[] | NewTopic): Promise<void>;
}

export declare class Client {
  producer(options?: ProducerOptions): Producer;
  consumer(options: ConsumerOptions): Consumer;
  admin(): Admin;
  close(): void;
}

export declare function connect(url: string, options?: ConnectOptions): Promise<Client>;
/** Load the WebAssembly module (connect does it on first use). */
export declare function load(): Promise<void>;
/** Edge runtimes: initialize from an imported WebAssembly.Module before connect. */
export declare function initSync(module: { module: WebAssembly.Module } | WebAssembly.Module): unknown;
