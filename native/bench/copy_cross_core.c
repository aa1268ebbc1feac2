/*
 * copy_cross_core.c - what copying a frame costs when another core has just written it.
 *
 * A copying hand-off moves a frame that the writer's core has just stored.
 * This measures, for a 1 MiB frame, the seqlock's copy (spine_shm_load_bytes:
 * relaxed atomic 64-bit loads) against a plain memcpy, in two situations:
 *   cross-core: thread A (CPU 0) stores the frame with spine_shm_store_bytes,
 *               thread B (CPU 1), spinning on a flag, copies it out at once;
 *   hot:        thread B copies the same frame again and again (the frame and
 *               the destination stay in B's caches), as a back-to-back memcpy.
 * The plain memcpy of the cross-core case races with nothing (the writer is done),
 * but it is only a baseline here: readers use the seqlock's copy.
 *
 * Build and run (from the repository root):
 *   gcc -std=c11 -O2 -pthread -Inative native/bench/copy_cross_core.c -o /tmp/copy_cross_core
 *   /tmp/copy_cross_core [rounds]
 * Prints the p50 in µs of each copy in each situation.
 */
#define _GNU_SOURCE 1
#include "spine_shm.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define FRAME (1u << 20)
#define MAX_ROUNDS 100000

enum { SEQLOCK_COPY, PLAIN_MEMCPY };
static const char *const names[] = {"relaxed atomic loads (seqlock)", "plain memcpy"};

static spine_word_t *frame;       /* the "slot": stored and loaded atomically word by word */
static unsigned char *source, *dest;
static _Atomic unsigned round_published, round_copied;
static int method;
static unsigned rounds;
static int64_t *samples;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void copy_out(void)
{
    if (method == SEQLOCK_COPY)
        spine_shm_load_bytes(dest, frame, FRAME);
    else
        memcpy(dest, (const void *)frame, FRAME);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "cannot pin to CPU %d: this test needs two CPUs\n", cpu);
        exit(2);
    }
}

static void *copier(void *arg)
{
    (void)arg;
    pin(1);
    for (unsigned r = 1; r <= rounds; r++) {
        while (atomic_load_explicit(&round_published, memory_order_acquire) != r) {}
        int64_t t0 = now_ns();
        copy_out();
        samples[r - 1] = now_ns() - t0;
        atomic_store_explicit(&round_copied, r, memory_order_release);
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double p50_us(void)
{
    qsort(samples, rounds, sizeof *samples, by_value);
    return (double)samples[rounds / 2] / 1e3;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000;
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "rounds must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    frame = aligned_alloc(4096, FRAME);
    source = aligned_alloc(4096, FRAME);
    dest = aligned_alloc(4096, FRAME);
    samples = calloc(rounds, sizeof *samples);
    if (!frame || !source || !dest || !samples) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    memset(source, 7, FRAME);
    memset(dest, 1, FRAME);
    spine_shm_store_bytes(frame, source, FRAME);
    printf("1 MiB copy, p50 µs           cross-core    hot\n");
    for (method = SEQLOCK_COPY; method <= PLAIN_MEMCPY; method++) {
        pthread_t thread;
        double cross, hot;
        atomic_store(&round_published, 0);
        atomic_store(&round_copied, 0);
        if (pthread_create(&thread, NULL, copier, NULL) != 0) return 2;
        pin(0);
        for (unsigned r = 1; r <= rounds; r++) {
            spine_shm_store_bytes(frame, source, FRAME);
            atomic_store_explicit(&round_published, r, memory_order_release);
            while (atomic_load_explicit(&round_copied, memory_order_acquire) != r) {}
        }
        pthread_join(thread, NULL);
        cross = p50_us();
        pin(1);
        for (unsigned r = 0; r < rounds; r++) {
            int64_t t0 = now_ns();
            copy_out();
            samples[r] = now_ns() - t0;
        }
        hot = p50_us();
        printf("%-30s %8.1f %8.1f\n", names[method], cross, hot);
    }
    free(frame);
    free(source);
    free(dest);
    free(samples);
    return 0;
}
