// TypeScript declarations of Weir's schema-aware helpers (client-wasm-schema/pkg/index.js).

export interface SchemaRegistryOptions {
  /** HTTP Basic credentials (`weir.http.authentication.method = BASIC`). From another
   * origin the registry's `access.control.allow.headers` must include Authorization. */
  auth?: { username: string; password: string };
  /** A fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** How long a subject's latest schema is reused before it is fetched again (ms,
   * default 60000). Schemas by id are immutable and cached for the registry's life. */
  latestTtlMs?: number;
}

export interface LatestSchema {
  id: number;
  version: number | null;
  schemaType: "AVRO" | "JSON" | "PROTOBUF";
  /** The schema text (for JSON Schema: give it to a validator such as ajv). */
  schema: string;
}

/**
 * A Confluent-compatible schema registry client that frames values in Confluent's wire
 * format (magic byte 0, 4-byte big-endian schema id, payload).
 *
 * Rejections are `Error`s named `SERIALIZATION_ERROR` (the value does not fit the schema:
 * the message starts with the field's path, e.g. `$.address.zip: expected an int, ...`),
 * `SCHEMA_REGISTRY_ERROR` (`code` is the registry's error_code, e.g. 40401, `status` the
 * HTTP status), `NETWORK_EXCEPTION` (fetch failed) or `INVALID_ARGUMENT`.
 */
export class SchemaRegistry {
  /** `url`: the registry's base URL, e.g. "http://127.0.0.1:8081". Call `load()` first. */
  constructor(url: string, options?: SchemaRegistryOptions);
  /** The subject's latest schema must be AVRO; the value is checked against it, then
   * encoded. Avro longs are JS numbers (exact up to 2^53); bytes and fixed are Uint8Arrays;
   * a union takes the first branch the value fits, or Avro JSON's `{ "branch": value }`. */
  encodeAvro(subject: string, value: unknown): Promise<Uint8Array>;
  /** The subject's latest schema must be JSON; only its top-level `type` and `required`
   * are checked here (validate fully with ajv on `latest(subject).schema`). */
  encodeJson(subject: string, value: unknown): Promise<Uint8Array>;
  /** Decode a framed value with the schema its id names (Avro decoded, JSON parsed). */
  decode(bytes: Uint8Array): Promise<unknown>;
  /** The subject's latest schema (cached for `latestTtlMs`). */
  latest(subject: string): Promise<LatestSchema>;
  /** Register a schema (text, or an object to JSON-stringify) under a subject; the id. */
  register(subject: string, schema: string | object, schemaType?: "AVRO" | "JSON"): Promise<number>;
  /** Forget every cached schema. */
  clearCache(): void;
  free(): void;
}

/** Confluent's TopicNameStrategy: `<topic>-value`, or `<topic>-key` when `isKey`. */
export function topicSubject(topic: string, isKey?: boolean): string;

/** Load the WebAssembly module (once); resolves when `SchemaRegistry` can be used. */
export function load(): Promise<void>;

/** Initialize synchronously from a compiled module (edge runtimes). */
export function initSync(module: { module: WebAssembly.Module | BufferSource }): unknown;
