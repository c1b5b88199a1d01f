/*
 * rdkafka_load: a librdkafka load generator for `cargo xtask bench`.
 *
 * Why C: the benchmark targets are stated against librdkafka (the client most production
 * Kafka users run), and a Python client tops out near 0.8 M small records/s on this
 * machine, so it would measure itself, not the broker. This is a minimal equivalent of
 * librdkafka's rdkafka_performance: produce N records of S bytes (acks configurable,
 * optionally paced to R records/s) and report throughput and send->delivery latency
 * percentiles, or consume N records from offset 0 of every partition (assign, no group).
 * Two more modes measure availability rather than speed, with librdkafka's DEFAULT settings
 * (only bootstrap.servers, acks=all and, for join, group.id are set):
 *   failover: produce 100-byte records at RATE records/s for SECONDS (while the harness
 *     kills and restarts brokers), then report the longest gap between consecutive
 *     successful delivery reports, the failed deliveries, and read every partition back
 *     from offset 0 to check that each acknowledged record is there. Prints `steady: ...`
 *     once it has produced and been acknowledged for 2 s, so the harness knows when to kill.
 *   join: subscribe to TOPIC in a new group and time subscribe() -> first assignment
 *     (the rebalance callback), i.e. FindCoordinator, JoinGroup (with the broker's
 *     group.initial.rebalance.delay.ms for a new group) and SyncGroup.
 *
 * Usage (any mode may be preceded by -X KEY=VALUE pairs: librdkafka properties set on every
 * client it makes, e.g. -X security.protocol=SASL_SSL -X ssl.ca.location=ca.pem):
 *   rdkafka_load produce BOOTSTRAP TOPIC RECORDS SIZE ACKS [RATE [KEYS]]  (RATE 0: as fast as
 *     possible; KEYS > 0: record i has key "k<i % KEYS>", for compacted topics)
 *   rdkafka_load consume BOOTSTRAP TOPIC RECORDS PARTITIONS
 *   rdkafka_load failover BOOTSTRAP TOPIC RATE SECONDS
 *   rdkafka_load join BOOTSTRAP TOPIC GROUP
 *   rdkafka_load create BOOTSTRAP TOPIC PARTITIONS  (CreateTopics through the Admin API,
 *     replication factor 1; waits until the metadata shows every partition)
 *   rdkafka_load spread BOOTSTRAP TOPIC PARTITIONS  (create, then one 100-byte record to
 *     each partition with acks=all; times both, for the many-partition workloads)
 * Output: one line, like kafka-producer-perf-test's summary (failover: a few lines, the
 * last a `result:` line of KEY=VALUE fields for the harness).
 */
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t *latencies; /* per record, microseconds, indexed by the record number */
static long delivered, failed;
static int64_t last_delivery_us;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    int64_t sent_at = (int64_t)(intptr_t)m->_private;
    int64_t now = now_us();
    last_delivery_us = now;
    if (m->err) {
        if (failed++ == 0)
            fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    int64_t latency = now - sent_at;
    latencies[delivered++] = latency > UINT32_MAX ? UINT32_MAX : (uint32_t)latency;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(long n, double p) {
    if (n == 0) return 0;
    long i = (long)(p * (double)(n - 1));
    return latencies[i] / 1000.0;
}

/* The -X KEY=VALUE properties given before the mode (bounded; checked in main). */
#define EXTRA_PROPS_MAX 32
static const char *extra_props[EXTRA_PROPS_MAX];
static int extra_props_len;

static rd_kafka_conf_t *base_conf(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    for (int i = 0; i < extra_props_len; i++) {
        char key[256];
        const char *eq = strchr(extra_props[i], '=');
        size_t key_len = (size_t)(eq - extra_props[i]);
        if (key_len >= sizeof key) { fprintf(stderr, "-X %s: key too long\n", extra_props[i]); exit(2); }
        memcpy(key, extra_props[i], key_len);
        key[key_len] = 0;
        if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "-X %s: %s\n", key, err);
            exit(2);
        }
    }
    return conf;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s=%s: %s\n", k, v, err);
        exit(2);
    }
}

static int produce(int argc, char **argv) {
    if (argc < 7) return 2;
    const char *bootstrap = argv[2], *topic = argv[3], *acks = argv[6];
    long records = atol(argv[4]);
    size_t size = (size_t)atol(argv[5]);
    double rate = argc > 7 ? atof(argv[7]) : 0;
    /* keys > 0: record i gets key "k<i % keys>" (a compacted topic needs keys). */
    long keys = argc > 8 ? atol(argv[8]) : 0;
    char key[32];
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "acks", acks);
    set(conf, "linger.ms", rate > 0 ? "0" : "5");
    /* A paced (latency) run disables Nagle, as Kafka's Java client always does: with it, a
     * small request sent while the one before is unacknowledged waits for the TCP ack, and
     * the percentiles measure the kernel's delayed acks rather than the broker. */
    if (rate > 0) set(conf, "socket.nagle.disable", "true");
    set(conf, "batch.size", "1000000");
    set(conf, "queue.buffering.max.messages", "2000000");
    set(conf, "queue.buffering.max.kbytes", "1048576");
    set(conf, "enable.idempotence", "false");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 2; }
    latencies = calloc((size_t)records, sizeof *latencies);
    char *payload = malloc(size);
    for (size_t i = 0; i < size; i++) payload[i] = (char)('A' + i % 26);
    int64_t start = now_us();
    for (long i = 0; i < records; i++) {
        if (rate > 0) {
            /* Sleep to the record's due time, serving delivery reports (whose callback takes
             * the latency) before each sleep. Spinning instead kept one of the machine's
             * cores busy, taken from the broker and from librdkafka's own threads. */
            int64_t due = start + (int64_t)((double)i * 1e6 / rate);
            for (;;) {
                rd_kafka_poll(rk, 0);
                int64_t left = due - now_us();
                if (left <= 0) break;
                struct timespec pause = {(time_t)(left / 1000000), (long)(left % 1000000) * 1000};
                nanosleep(&pause, NULL);
            }
        }
        size_t key_len = 0;
        if (keys > 0) key_len = (size_t)snprintf(key, sizeof key, "k%ld", i % keys);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, size),
                RD_KAFKA_V_KEY(keys > 0 ? key : NULL, key_len),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)now_us()), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
    }
    while (delivered + failed < records) rd_kafka_poll(rk, 10);
    double seconds = (double)(last_delivery_us - start) / 1e6;
    qsort(latencies, (size_t)delivered, sizeof *latencies, cmp_u32);
    printf("librdkafka %s: %ld records acked (acks=%s), %.1f records/sec (%.2f MB/sec), "
           "%.3f ms 50th, %.3f ms 99th, %.3f ms 99.9th, %.3f ms max latency, %ld failed.\n",
           rd_kafka_version_str(), delivered, acks, delivered / seconds,
           delivered * (double)size / 1048576.0 / seconds, pct_ms(delivered, 0.5),
           pct_ms(delivered, 0.99), pct_ms(delivered, 0.999), pct_ms(delivered, 1.0), failed);
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}

static int consume(int argc, char **argv) {
    if (argc < 6) return 2;
    const char *bootstrap = argv[2], *topic = argv[3];
    long records = atol(argv[4]);
    int partitions = atoi(argv[5]);
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "group.id", "rdkafka-load");
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.max.bytes", "52428800");
    if (getenv("RDK_DEBUG")) set(conf, "debug", getenv("RDK_DEBUG"));
    set(conf, "max.partition.fetch.bytes", "10485760");
    /* The default (100000) makes librdkafka back off 1 s whenever one fetch overfills its
       queue, which measures the client setting, not the broker. */
    set(conf, "queued.min.messages", "2000000");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 2; }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = 0;
    rd_kafka_assign(rk, list);
    long seen = 0;
    int64_t start = now_us(), deadline = start + 120 * 1000000LL;
    while (seen < records && now_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) seen++;
        rd_kafka_message_destroy(m);
    }
    double seconds = (double)(now_us() - start) / 1e6;
    printf("librdkafka %s: %ld records consumed, %.1f records/sec.\n", rd_kafka_version_str(),
           seen, seen / seconds);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return seen < records;
}

/* ---- failover: paced acks=all producer, longest gap between acks, read-back check ---- */

#define FAILOVER_SIZE 100

static struct {
    long acked, failed, steady_at;
    int64_t start_us, last_ok_us, last_ok_unix_ms;
    int64_t max_gap_us, gap_from_unix_ms, gap_to_unix_ms;
    int64_t *sent_us;        /* per sequence number */
    unsigned char *acked_by; /* per sequence number: 1 once acknowledged */
    uint32_t *lat;           /* latencies of the acknowledged records, microseconds */
    char first_error[256];
} fo;

static void on_failover_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    long seq = (long)(intptr_t)m->_private;
    int64_t now = now_us();
    if (m->err) {
        if (fo.failed++ == 0)
            snprintf(fo.first_error, sizeof fo.first_error, "%s", rd_kafka_err2str(m->err));
        return;
    }
    int64_t unix_ms = now_unix_ms();
    if (fo.last_ok_us && now - fo.last_ok_us > fo.max_gap_us) {
        fo.max_gap_us = now - fo.last_ok_us;
        fo.gap_from_unix_ms = fo.last_ok_unix_ms;
        fo.gap_to_unix_ms = unix_ms;
    }
    fo.last_ok_us = now;
    fo.last_ok_unix_ms = unix_ms;
    fo.acked_by[seq] = 1;
    int64_t latency = now - fo.sent_us[seq];
    fo.lat[fo.acked++] = latency > UINT32_MAX ? UINT32_MAX : (uint32_t)latency;
}

/* Reads every partition of the topic from offset 0 to its high watermark; counts, per
   sequence number, how often it is there. Returns the records read, -1 on failure. */
static long read_back(const char *bootstrap, const char *topic, long sent, unsigned *seen,
                      int *partitions_out) {
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "group.id", "rdkafka-load-failover-check");
    set(conf, "enable.auto.commit", "false");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return -1; }
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "read back: no metadata for %s\n", topic);
        return -1;
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    *partitions_out = partitions;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    int64_t *high = calloc((size_t)partitions, sizeof *high);
    long expected = 0, got = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t low;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000);
        if (e) {
            fprintf(stderr, "read back: watermarks of %s-%d: %s\n", topic, p, rd_kafka_err2str(e));
            return -1;
        }
        expected += high[p];
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, list);
    int64_t deadline = now_us() + 60 * 1000000LL;
    while (got < expected && now_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err && m->partition < partitions && m->offset < high[m->partition]) {
            got++;
            char digits[11] = {0};
            if (m->len >= 10) memcpy(digits, m->payload, 10);
            long seq = atol(digits);
            if (seq >= 0 && seq < sent) seen[seq]++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(list);
    free(high);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got < expected ? -1 : got;
}

static int failover(int argc, char **argv) {
    if (argc < 6) return 2;
    const char *bootstrap = argv[2], *topic = argv[3];
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    if (rate <= 0 || seconds <= 0) return 2;
    long records = (long)(rate * seconds);
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "acks", "all"); /* librdkafka's default too; everything else stays default */
    if (getenv("RDK_DEBUG")) set(conf, "debug", getenv("RDK_DEBUG"));
    rd_kafka_conf_set_dr_msg_cb(conf, on_failover_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 2; }
    fo.sent_us = calloc((size_t)records, sizeof *fo.sent_us);
    fo.acked_by = calloc((size_t)records, 1);
    fo.lat = calloc((size_t)records, sizeof *fo.lat);
    char payload[FAILOVER_SIZE];
    memset(payload, 'x', sizeof payload);
    fo.start_us = now_us();
    long sent = 0;
    int steady = 0;
    while (sent < records) {
        int64_t now = now_us();
        long due = (long)((double)(now - fo.start_us) * rate / 1e6) + 1;
        if (due > records) due = records;
        for (; sent < due; sent++) {
            char digits[24];
            snprintf(digits, sizeof digits, "%010ld", sent); /* the record's sequence number */
            memcpy(payload, digits, 10);
            fo.sent_us[sent] = now_us();
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, sizeof payload),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)sent), RD_KAFKA_V_END);
            if (e) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
        }
        if (!steady && fo.acked >= (long)rate && now - fo.start_us >= 2000000) {
            steady = 1;
            printf("steady: %ld records acked after %.1f s\n", fo.acked,
                   (double)(now - fo.start_us) / 1e6);
            fflush(stdout);
        }
        rd_kafka_poll(rk, 1);
    }
    /* Every record gets its delivery report (message.timeout.ms is 300 s by default). */
    int64_t flush_deadline = now_us() + 120 * 1000000LL;
    while (fo.acked + fo.failed < records && now_us() < flush_deadline) rd_kafka_poll(rk, 10);
    long undelivered = records - fo.acked - fo.failed;
    double elapsed = (double)(now_us() - fo.start_us) / 1e6;
    qsort(fo.lat, (size_t)fo.acked, sizeof *fo.lat, cmp_u32);
    latencies = fo.lat;
    char failures[320] = "";
    if (fo.failed) snprintf(failures, sizeof failures, " (the first: %s)", fo.first_error);
    printf("librdkafka %s failover: %ld records sent at %.0f/s over %.1f s (acks=all, other "
           "settings default), %ld acked, %ld failed%s, %ld without a report; longest gap "
           "between consecutive acks %.1f ms; latency %.3f ms 50th, %.3f ms 99th, %.3f ms max.\n",
           rd_kafka_version_str(), records, rate, elapsed, fo.acked, fo.failed, failures,
           undelivered, (double)fo.max_gap_us / 1000.0, pct_ms(fo.acked, 0.5),
           pct_ms(fo.acked, 0.99), pct_ms(fo.acked, 1.0));
    rd_kafka_destroy(rk);
    unsigned *seen = calloc((size_t)records, sizeof *seen);
    int partitions = 0;
    long read = read_back(bootstrap, topic, records, seen, &partitions);
    long missing = 0, duplicates = 0, unacked_present = 0;
    for (long i = 0; i < records; i++) {
        if (fo.acked_by[i] && seen[i] == 0) missing++;
        if (seen[i] > 1) duplicates += seen[i] - 1;
        if (!fo.acked_by[i] && seen[i] > 0) unacked_present++;
    }
    if (read < 0) {
        printf("read back: FAILED (could not read every partition up to its high watermark)\n");
    } else {
        printf("read back: %ld records in %d partition(s) up to the high watermark; %s "
               "(%ld missing), %ld duplicates (retries without idempotence), %ld present "
               "without an ack.\n",
               read, partitions,
               missing ? "acknowledged records LOST" : "every acknowledged record present",
               missing, duplicates, unacked_present);
    }
    printf("result: sent=%ld acked=%ld failed=%ld undelivered=%ld max_gap_ms=%.1f "
           "gap_from_unix_ms=%" PRId64 " gap_to_unix_ms=%" PRId64 " read_back=%s missing=%ld "
           "duplicates=%ld\n",
           records, fo.acked, fo.failed, undelivered, (double)fo.max_gap_us / 1000.0,
           fo.gap_from_unix_ms, fo.gap_to_unix_ms, read < 0 ? "failed" : "ok", missing,
           duplicates);
    return (fo.failed || undelivered || missing || read < 0) ? 1 : 0;
}

/* ---- join: subscribe() -> first assignment of a new consumer group ---- */

static int64_t assigned_at;
static int assigned_partitions;

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!assigned_at) {
            assigned_at = now_us();
            assigned_partitions = parts->cnt;
        }
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static int join(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *bootstrap = argv[2], *topic = argv[3], *group = argv[4];
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "group.id", group);
    if (getenv("RDK_DEBUG")) set(conf, "debug", getenv("RDK_DEBUG"));
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 2; }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    int64_t start = now_us(), deadline = start + 60 * 1000000LL;
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, list);
    if (e) {
        fprintf(stderr, "subscribe: %s\n", rd_kafka_err2str(e));
        return 1;
    }
    while (!assigned_at && now_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10);
        if (m) rd_kafka_message_destroy(m);
    }
    if (assigned_at) {
        printf("librdkafka %s: group %s, first assignment (%d partition(s) of %s) %.1f ms "
               "after subscribe().\n",
               rd_kafka_version_str(), group, assigned_partitions, topic,
               (double)(assigned_at - start) / 1000.0);
    } else {
        printf("librdkafka %s: group %s, no assignment within 60 s.\n", rd_kafka_version_str(),
               group);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return assigned_at ? 0 : 1;
}

/* ---- create / spread: a topic of many partitions, then one record to each ---- */

/* Creates TOPIC with PARTITIONS partitions (RF 1) through rk's Admin API and waits until the
   metadata lists all of them. Returns 0 on success. */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions) {
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
    if (!nt) { fprintf(stderr, "create %s: %s\n", topic, err); return 1; }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 300000, err, sizeof err);
    rd_kafka_AdminOptions_set_request_timeout(opts, 300000, err, sizeof err);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 310000);
    int rc = 1;
    if (!ev) {
        fprintf(stderr, "create %s: no answer within 310 s\n", topic);
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "create %s: %s\n", topic, rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = 0;
        else if (n == 1)
            fprintf(stderr, "create %s: %s\n", topic, rd_kafka_err2str(rd_kafka_topic_result_error(res[0])));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (rc) return rc;
    /* The answer can precede the metadata: wait until every partition has a leader. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = now_us() + 300 * 1000000LL;
    for (;;) {
        const rd_kafka_metadata_t *md = NULL;
        int ready = 0;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err &&
                md->topics[0].partition_cnt == partitions) {
                ready = 1;
                for (int p = 0; p < partitions; p++)
                    if (md->topics[0].partitions[p].leader < 0) ready = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (ready) break;
        if (now_us() > deadline) {
            fprintf(stderr, "create %s: metadata never showed %d partitions\n", topic, partitions);
            rd_kafka_topic_destroy(rkt);
            return 1;
        }
        rd_kafka_poll(rk, 100);
    }
    rd_kafka_topic_destroy(rkt);
    return 0;
}

static int create_or_spread(int argc, char **argv, int spread) {
    if (argc < 5) return 2;
    const char *bootstrap = argv[2], *topic = argv[3];
    int partitions = atoi(argv[4]);
    if (partitions < 1) return 2;
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "acks", "all");
    set(conf, "linger.ms", "5");
    set(conf, "enable.idempotence", "false");
    set(conf, "queue.buffering.max.messages", "2000000");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 2; }
    int64_t start = now_us();
    if (create_topic(rk, topic, partitions)) { rd_kafka_destroy(rk); return 1; }
    int64_t created = now_us();
    if (!spread) {
        printf("librdkafka %s: created %s with %d partitions in %.1f ms.\n",
               rd_kafka_version_str(), topic, partitions, (double)(created - start) / 1000.0);
        rd_kafka_destroy(rk);
        return 0;
    }
    latencies = calloc((size_t)partitions, sizeof *latencies);
    char payload[100];
    memset(payload, 'A', sizeof payload);
    for (int p = 0; p < partitions; p++) {
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                RD_KAFKA_V_VALUE(payload, sizeof payload),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)now_us()), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce to %s-%d: %s\n", topic, p, rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 1);
        }
    }
    int64_t deadline = now_us() + 600 * 1000000LL;
    while (delivered + failed < partitions && now_us() < deadline) rd_kafka_poll(rk, 10);
    int64_t done = now_us();
    printf("librdkafka %s: %s: %d partitions created in %.1f ms, one record each acked "
           "(acks=all) in %.1f ms, %.1f ms in all, %ld acked, %ld failed.\n",
           rd_kafka_version_str(), topic, partitions, (double)(created - start) / 1000.0,
           (double)(done - created) / 1000.0, (double)(done - start) / 1000.0, delivered, failed);
    rd_kafka_destroy(rk);
    return delivered == partitions ? 0 : 1;
}

int main(int argc, char **argv) {
    /* Leading -X KEY=VALUE pairs; the mode's arguments keep their positions after them. */
    while (argc > 2 && strcmp(argv[1], "-X") == 0) {
        if (extra_props_len == EXTRA_PROPS_MAX || !strchr(argv[2], '=')) {
            fprintf(stderr, "-X takes KEY=VALUE (at most %d of them)\n", EXTRA_PROPS_MAX);
            return 2;
        }
        extra_props[extra_props_len++] = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc > 1 && strcmp(argv[1], "produce") == 0) return produce(argc, argv);
    if (argc > 1 && strcmp(argv[1], "consume") == 0) return consume(argc, argv);
    if (argc > 1 && strcmp(argv[1], "failover") == 0) return failover(argc, argv);
    if (argc > 1 && strcmp(argv[1], "join") == 0) return join(argc, argv);
    if (argc > 1 && strcmp(argv[1], "create") == 0) return create_or_spread(argc, argv, 0);
    if (argc > 1 && strcmp(argv[1], "spread") == 0) return create_or_spread(argc, argv, 1);
    fprintf(stderr, "usage: rdkafka_load [-X KEY=VALUE]... produce BOOTSTRAP TOPIC N SIZE ACKS [RATE [KEYS]] | "
                    "consume BOOTSTRAP TOPIC N PARTITIONS | "
                    "failover BOOTSTRAP TOPIC RATE SECONDS | join BOOTSTRAP TOPIC GROUP | "
                    "create|spread BOOTSTRAP TOPIC PARTITIONS\n");
    return 2;
}
