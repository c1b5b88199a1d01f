/*
 * rdkafka_load: a librdkafka load generator for `cargo xtask bench`.
 *
 * Why C: the benchmark targets are stated against librdkafka (the client most production
 * Kafka users run), and a Python client tops out near 0.8 M small records/s on this
 * machine, so it would measure itself, not the broker. This is a minimal equivalent of
 * librdkafka's rdkafka_performance: produce N records of S bytes (acks configurable,
 * optionally paced to R records/s) and report throughput and send->delivery latency
 * percentiles, or consume N records from offset 0 of every partition (assign, no group).
 *
 * Usage:
 *   rdkafka_load produce BOOTSTRAP TOPIC RECORDS SIZE ACKS [RATE] [PARTITIONS]
 *   rdkafka_load consume BOOTSTRAP TOPIC RECORDS PARTITIONS
 * Output: one line, like kafka-producer-perf-test's summary.
 */
#include <librdkafka/rdkafka.h>
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

static rd_kafka_conf_t *base_conf(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", err);
        exit(2);
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
    char err[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "acks", acks);
    set(conf, "linger.ms", rate > 0 ? "0" : "5");
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
            int64_t due = start + (int64_t)((double)i * 1e6 / rate);
            while (now_us() < due) rd_kafka_poll(rk, 0);
        }
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, size),
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

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "produce") == 0) return produce(argc, argv);
    if (argc > 1 && strcmp(argv[1], "consume") == 0) return consume(argc, argv);
    fprintf(stderr, "usage: rdkafka_load produce BOOTSTRAP TOPIC N SIZE ACKS [RATE] | "
                    "consume BOOTSTRAP TOPIC N PARTITIONS\n");
    return 2;
}
