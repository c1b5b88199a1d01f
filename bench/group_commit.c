/*
 * group_commit: the acks=all latency any group commit can reach on this disk (issue 19).
 *
 *   gcc -O2 -pthread -o group_commit bench/group_commit.c
 *   ./group_commit K RECORDS RATE DIR
 *
 * Records of 100 B arrive at RATE per second. A record is acknowledged when a fdatasync
 * that started after it arrived returns. Up to K syncs run at once (K=1 is Weir's group
 * commit); a sync takes every record that arrived since the last sync started, writes
 * their bytes (pwrite, as Weir's storage hands its buffered journal to the OS at the sync)
 * and fdatasyncs. Then, in the same run, the disk's own figure as `cargo xtask bench
 * --peer` measures it: 4,000 x (1 KiB appended, fdatasync). Prints both sets of
 * percentiles. No broker, no network: a bound for the broker's acks=all latency.
 * Results and reading: docs/benchmarks.md, "acks=all: one sync in flight or two".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS_MAX 16
#define RECORD_BYTES 100

static int slots, fd;
static long records;
static double *arrived, *latency;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
/* Records [0, written) have arrived; [0, covered) belong to a started sync. */
static long written, covered;
static int running, finished;
/* A started sync per slot: records [from, to), or none. */
static long job_from[SLOTS_MAX], job_to[SLOTS_MAX];
static int job_ready[SLOTS_MAX];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Under the mutex: start a sync for every uncovered record if a slot is free. */
static void maybe_start(void) {
    if (covered == written || running == slots) return;
    for (int slot = 0; slot < slots; slot++) {
        if (job_ready[slot]) continue;
        job_from[slot] = covered;
        job_to[slot] = written;
        covered = written;
        job_ready[slot] = 1;
        running++;
        pthread_cond_broadcast(&changed);
        return;
    }
}

static int all_done(void) { return finished && covered == written; }

static void *syncer(void *arg) {
    long slot = (long)arg;
    static char zeros[1 << 20];
    pthread_mutex_lock(&mutex);
    for (;;) {
        while (!job_ready[slot] && !all_done()) pthread_cond_wait(&changed, &mutex);
        if (!job_ready[slot]) break;
        long from = job_from[slot], to = job_to[slot];
        pthread_mutex_unlock(&mutex);
        size_t bytes = (size_t)(to - from) * RECORD_BYTES;
        if (bytes > sizeof zeros) bytes = sizeof zeros;
        if (pwrite(fd, zeros, bytes, (off_t)from * RECORD_BYTES) < 0) perror("pwrite");
        if (fdatasync(fd) != 0) perror("fdatasync");
        double done = now();
        pthread_mutex_lock(&mutex);
        for (long i = from; i < to; i++) latency[i] = done - arrived[i];
        job_ready[slot] = 0;
        running--;
        maybe_start();
        pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&mutex);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double ms_at(double *sorted, long n, double q) {
    return sorted[(long)(q * (double)(n - 1))] * 1000.0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s K RECORDS RATE DIR\n", argv[0]);
        return 2;
    }
    slots = atoi(argv[1]);
    records = atol(argv[2]);
    double rate = atof(argv[3]);
    if (slots < 1 || slots > SLOTS_MAX || records < 1 || rate <= 0) {
        fprintf(stderr, "K must be 1..%d, RECORDS and RATE positive\n", SLOTS_MAX);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/group-commit-%d.dat", argv[4], getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    posix_fallocate(fd, 0, 256 << 20);
    arrived = calloc((size_t)records, sizeof *arrived);
    latency = calloc((size_t)records, sizeof *latency);
    pthread_t threads[SLOTS_MAX];
    for (long slot = 0; slot < slots; slot++)
        pthread_create(&threads[slot], NULL, syncer, (void *)slot);

    double start = now();
    for (long i = 0; i < records; i++) {
        double due = start + (double)i / rate, left;
        while ((left = due - now()) > 0) {
            struct timespec pause = {0, (long)(left * 1e9)};
            nanosleep(&pause, NULL);
        }
        pthread_mutex_lock(&mutex);
        arrived[i] = now();
        written = i + 1;
        maybe_start();
        pthread_mutex_unlock(&mutex);
    }
    pthread_mutex_lock(&mutex);
    finished = 1;
    while (covered < written || running > 0) {
        maybe_start();
        pthread_cond_wait(&changed, &mutex);
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mutex);
    for (int slot = 0; slot < slots; slot++) pthread_join(threads[slot], NULL);

    long samples = 4000;
    double *disk = calloc((size_t)samples, sizeof *disk);
    char kib[1024];
    memset(kib, 'y', sizeof kib);
    off_t end = (off_t)records * RECORD_BYTES;
    for (long i = 0; i < samples; i++) {
        if (pwrite(fd, kib, sizeof kib, end) < 0) perror("pwrite");
        end += (off_t)sizeof kib;
        double before = now();
        fdatasync(fd);
        disk[i] = now() - before;
    }
    unlink(path);
    qsort(latency, (size_t)records, sizeof *latency, by_value);
    qsort(disk, (size_t)samples, sizeof *disk, by_value);
    printf("K=%d records p50 %.3f p99 %.3f p99.9 %.3f ms | disk fdatasync p50 %.3f p99 %.3f "
           "p99.9 %.3f ms | record p99 / disk p99 %.2f\n",
           slots, ms_at(latency, records, 0.5), ms_at(latency, records, 0.99),
           ms_at(latency, records, 0.999), ms_at(disk, samples, 0.5),
           ms_at(disk, samples, 0.99), ms_at(disk, samples, 0.999),
           ms_at(latency, records, 0.99) / ms_at(disk, samples, 0.99));
    return 0;
}
