/*
 * spine_shm.h - the waveform channel's shared-memory layout and seqlock.
 *
 * One writer (the physics engine, C, C++ or Python) writes frames into a ring
 * of slots in a POSIX shared-memory segment and never waits for anybody;
 * any number of readers copy frames out and never see a torn one.
 * Layout and protocol are documented in native/LAYOUT.md.
 *
 * Standalone: include this header from C11 or C++20 (std::atomic_ref) with no
 * Python.  Linux only (futex).  No allocation, no locks.
 *
 * Data copies under the seqlock: every payload byte is accessed through
 * relaxed atomic 64-bit loads/stores, bracketed by fences, as in H.-J. Boehm,
 * "Can seqlocks get along with programming language memory models?" (MSPC
 * 2012), section 4.  Writer: seq = s+1 (relaxed); release fence; relaxed
 * word stores; seq = s+2 (release).  Reader: s0 = seq (acquire); relaxed word
 * loads; acquire fence; s1 = seq (relaxed); consistent iff s0 == s1 and even.
 * No plain (non-atomic) access races with a write, so there is no data race
 * and no undefined behaviour under the C11/C++11 memory model; on x86-64 and
 * AArch64 relaxed 64-bit atomics compile to plain loads and stores.
 */
#ifndef SPINE_SHM_H
#define SPINE_SHM_H

/* syscall() and clock_gettime() are POSIX/GNU, hidden by glibc under strict -std=c11 */
#if !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#ifndef CLOCK_MONOTONIC
#error "spine_shm.h needs POSIX declarations: include it before other headers, or compile with -D_GNU_SOURCE"
#endif

#ifdef __cplusplus
#include <atomic>
#define SPINE_ATOMIC(T) std::atomic<T>
#define SPINE_RELAXED std::memory_order_relaxed
#define SPINE_ACQUIRE std::memory_order_acquire
#define SPINE_RELEASE std::memory_order_release
#define SPINE_SEQ_CST std::memory_order_seq_cst
#define SPINE_LOAD(p, mo) (p)->load(mo)
#define SPINE_STORE(p, v, mo) (p)->store((v), mo)
#define SPINE_FETCH_ADD(p, v, mo) (p)->fetch_add((v), mo)
#define SPINE_FETCH_SUB(p, v, mo) (p)->fetch_sub((v), mo)
#define SPINE_CAS(p, expected, desired) \
    (p)->compare_exchange_strong(*(expected), (desired), std::memory_order_seq_cst)
#define SPINE_FENCE(mo) std::atomic_thread_fence(mo)
/* payload words are plain uint64_t viewed atomically (C++20 atomic_ref) */
#define SPINE_WORD_LOAD(p) std::atomic_ref<uint64_t>(*(p)).load(std::memory_order_relaxed)
#define SPINE_WORD_STORE(p, v) std::atomic_ref<uint64_t>(*(p)).store((v), std::memory_order_relaxed)
typedef uint64_t spine_word_t;
#define SPINE_STATIC_ASSERT(c, m) static_assert(c, m)
extern "C" {
#else
#include <stdatomic.h>
#include <stdbool.h>
#define SPINE_ATOMIC(T) _Atomic(T)
#define SPINE_RELAXED memory_order_relaxed
#define SPINE_ACQUIRE memory_order_acquire
#define SPINE_RELEASE memory_order_release
#define SPINE_SEQ_CST memory_order_seq_cst
#define SPINE_LOAD(p, mo) atomic_load_explicit((p), mo)
#define SPINE_STORE(p, v, mo) atomic_store_explicit((p), (v), mo)
#define SPINE_FETCH_ADD(p, v, mo) atomic_fetch_add_explicit((p), (v), mo)
#define SPINE_FETCH_SUB(p, v, mo) atomic_fetch_sub_explicit((p), (v), mo)
#define SPINE_CAS(p, expected, desired) atomic_compare_exchange_strong((p), (expected), (desired))
#define SPINE_FENCE(mo) atomic_thread_fence(mo)
#define SPINE_WORD_LOAD(p) atomic_load_explicit((p), memory_order_relaxed)
#define SPINE_WORD_STORE(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
typedef _Atomic(uint64_t) spine_word_t;
#define SPINE_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* ---- constants ---------------------------------------------------------- */

/* "SPINESHM" read as a little-endian uint64 */
#define SPINE_SHM_MAGIC UINT64_C(0x4D4853454E495053)
#define SPINE_SHM_LAYOUT_VERSION 1u
#define SPINE_SHM_CACHE_LINE 64u
#define SPINE_SHM_HEADER_SIZE 4096u
#define SPINE_SHM_CTRL_STRIDE 128u
#define SPINE_SHM_PAYLOAD_ALIGN 4096u
#define SPINE_SHM_MAX_SLOTS (1u << 16)
#define SPINE_SHM_MAX_SLOT_SIZE (UINT64_C(1) << 36) /* 64 GiB */
#define SPINE_SHM_MAX_TOTAL (UINT64_C(1) << 40)     /* 1 TiB */
/* frame_index of a slot that holds no frame */
#define SPINE_SHM_NO_FRAME UINT64_MAX

/* ---- layout ------------------------------------------------------------- */

typedef struct spine_shm_header {
    /* cache line 0: geometry, written once before magic is published */
    SPINE_ATOMIC(uint64_t) magic;  /* SPINE_SHM_MAGIC once initialised */
    uint32_t layout_version;       /* SPINE_SHM_LAYOUT_VERSION */
    uint32_t header_size;          /* SPINE_SHM_HEADER_SIZE */
    uint32_t slot_count;           /* slots in the ring */
    uint32_t ctrl_stride;          /* SPINE_SHM_CTRL_STRIDE */
    uint64_t slot_size;            /* payload capacity of one slot, bytes */
    uint64_t slot_stride;          /* distance between payloads, bytes */
    uint64_t ctrl_offset;          /* offset of slot 0's control block */
    uint64_t payload_offset;       /* offset of slot 0's payload */
    uint64_t total_size;           /* bytes the segment must have */
    /* cache line 1: identity */
    uint64_t segment_id;           /* random, drawn when the segment is created */
    int64_t created_ns;            /* CLOCK_REALTIME at creation */
    SPINE_ATOMIC(uint64_t) writer_pid;         /* 0 = no writer */
    SPINE_ATOMIC(uint64_t) writer_start_ticks; /* /proc/<pid>/stat field 22, 0 = unknown */
    SPINE_ATOMIC(uint64_t) writer_generation;  /* +1 at every (re)start of a writer */
    uint8_t pad1[24];
    /* cache line 2: progress, written by the writer only */
    SPINE_ATOMIC(uint64_t) frame_count; /* frames committed; latest = frame_count-1 */
    SPINE_ATOMIC(uint32_t) wake_seq;    /* futex word: +1 at every begin and every commit */
    SPINE_ATOMIC(int32_t) writer_cpu;   /* CPU the latest write began on, -1 = unknown */
    SPINE_ATOMIC(int64_t) begun_ns;     /* CLOCK_MONOTONIC when the latest write began, 0 = none yet */
    SPINE_ATOMIC(int64_t) write_ns;     /* how long the latest committed write took (begin to commit) */
    uint8_t pad2[32];
    /* cache line 3: written by readers only */
    SPINE_ATOMIC(uint32_t) waiters;     /* readers asleep (or about to) on wake_seq */
    uint8_t pad3[60];
} spine_shm_header;

typedef struct spine_shm_slot_ctrl {
    /* cache line 0: the seqlock counter alone; odd = being written */
    SPINE_ATOMIC(uint64_t) seq;
    uint8_t pad0[56];
    /* cache line 1: frame metadata, written inside the seqlock */
    SPINE_ATOMIC(uint64_t) frame_index; /* SPINE_SHM_NO_FRAME when empty */
    SPINE_ATOMIC(uint64_t) data_size;
    SPINE_ATOMIC(int64_t) timestamp_ns;
    SPINE_ATOMIC(uint64_t) progress;    /* bytes of the write in progress stored so far (a hint, see below) */
    uint8_t pad1[32];
} spine_shm_slot_ctrl;

SPINE_STATIC_ASSERT(sizeof(spine_shm_header) == 4 * SPINE_SHM_CACHE_LINE, "header is 4 cache lines");
SPINE_STATIC_ASSERT(offsetof(spine_shm_header, segment_id) == 64, "identity on line 1");
SPINE_STATIC_ASSERT(offsetof(spine_shm_header, frame_count) == 128, "progress on line 2");
SPINE_STATIC_ASSERT(offsetof(spine_shm_header, waiters) == 192, "waiters on line 3");
SPINE_STATIC_ASSERT(offsetof(spine_shm_header, begun_ns) == 144, "write timing on line 2");
SPINE_STATIC_ASSERT(sizeof(spine_shm_slot_ctrl) == SPINE_SHM_CTRL_STRIDE, "slot ctrl is 2 lines");
SPINE_STATIC_ASSERT(offsetof(spine_shm_slot_ctrl, frame_index) == 64, "meta on its own line");
SPINE_STATIC_ASSERT(offsetof(spine_shm_slot_ctrl, progress) == 88, "progress beside the meta");
SPINE_STATIC_ASSERT(sizeof(SPINE_ATOMIC(uint64_t)) == 8, "lock-free 64-bit atomics");

/* Geometry derived from (slot_count, slot_size); 0 on success, -1 if absurd. */
typedef struct spine_shm_geometry {
    uint64_t ctrl_offset, payload_offset, slot_stride, total_size;
} spine_shm_geometry;

static inline uint64_t spine_shm__round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static inline int spine_shm_geometry_of(uint32_t slot_count, uint64_t slot_size, spine_shm_geometry *g)
{
    if (slot_count < 1 || slot_count > SPINE_SHM_MAX_SLOTS) return -1;
    if (slot_size < 8 || slot_size > SPINE_SHM_MAX_SLOT_SIZE) return -1;
    g->ctrl_offset = SPINE_SHM_HEADER_SIZE;
    g->payload_offset = spine_shm__round_up(
        g->ctrl_offset + (uint64_t)slot_count * SPINE_SHM_CTRL_STRIDE, SPINE_SHM_PAYLOAD_ALIGN);
    g->slot_stride = spine_shm__round_up(slot_size, SPINE_SHM_PAYLOAD_ALIGN);
    /* bounded above: 2^16 slots * 2^36 bytes = 2^52, no overflow */
    g->total_size = g->payload_offset + (uint64_t)slot_count * g->slot_stride;
    if (g->total_size > SPINE_SHM_MAX_TOTAL) return -1;
    return 0;
}

static inline spine_shm_slot_ctrl *spine_shm_ctrl(spine_shm_header *h, uint32_t slot)
{
    return (spine_shm_slot_ctrl *)((char *)h + h->ctrl_offset + (uint64_t)slot * SPINE_SHM_CTRL_STRIDE);
}

static inline spine_word_t *spine_shm_payload(spine_shm_header *h, uint32_t slot)
{
    return (spine_word_t *)((char *)h + h->payload_offset + (uint64_t)slot * h->slot_stride);
}

/* ---- validation (reader opening a segment) ------------------------------ */

typedef enum spine_shm_status {
    SPINE_SHM_OK = 0,
    SPINE_SHM_E_TOO_SMALL = 1,    /* mapping shorter than the header */
    SPINE_SHM_E_MAGIC = 2,        /* not a spine segment, or not initialised yet */
    SPINE_SHM_E_VERSION = 3,      /* other layout version */
    SPINE_SHM_E_GEOMETRY = 4,     /* slot count/size absurd or inconsistent */
    SPINE_SHM_E_TRUNCATED = 5,    /* mapping shorter than total_size */
    /* results of reads */
    SPINE_SHM_NOT_YET = 10,       /* the frame has not been committed */
    SPINE_SHM_OVERWRITTEN = 11,   /* the frame was (or is being) overwritten */
    SPINE_SHM_BUFFER_SMALL = 12,  /* destination smaller than the frame */
    SPINE_SHM_EMPTY = 13          /* nothing committed yet */
} spine_shm_status;

/* Check a mapping of map_size bytes before touching anything else in it. */
static inline spine_shm_status spine_shm_validate(const void *base, uint64_t map_size)
{
    spine_shm_header *h = (spine_shm_header *)base;
    spine_shm_geometry g;
    if (map_size < SPINE_SHM_HEADER_SIZE) return SPINE_SHM_E_TOO_SMALL;
    if (SPINE_LOAD(&h->magic, SPINE_ACQUIRE) != SPINE_SHM_MAGIC) return SPINE_SHM_E_MAGIC;
    if (h->layout_version != SPINE_SHM_LAYOUT_VERSION) return SPINE_SHM_E_VERSION;
    if (h->header_size != SPINE_SHM_HEADER_SIZE || h->ctrl_stride != SPINE_SHM_CTRL_STRIDE)
        return SPINE_SHM_E_GEOMETRY;
    if (spine_shm_geometry_of(h->slot_count, h->slot_size, &g) != 0) return SPINE_SHM_E_GEOMETRY;
    if (g.ctrl_offset != h->ctrl_offset || g.payload_offset != h->payload_offset ||
        g.slot_stride != h->slot_stride || g.total_size != h->total_size)
        return SPINE_SHM_E_GEOMETRY;
    if (map_size < h->total_size) return SPINE_SHM_E_TRUNCATED;
    return SPINE_SHM_OK;
}

/* ---- writer ------------------------------------------------------------- */

/* Lay out a zero-filled mapping of at least g.total_size bytes; publishes magic last. */
static inline int spine_shm_init(void *base, uint64_t map_size, uint32_t slot_count, uint64_t slot_size,
                                 uint64_t segment_id, int64_t created_ns)
{
    spine_shm_header *h = (spine_shm_header *)base;
    spine_shm_geometry g;
    uint32_t i;
    if (spine_shm_geometry_of(slot_count, slot_size, &g) != 0 || map_size < g.total_size) return -1;
    h->layout_version = SPINE_SHM_LAYOUT_VERSION;
    h->header_size = SPINE_SHM_HEADER_SIZE;
    h->slot_count = slot_count;
    h->ctrl_stride = SPINE_SHM_CTRL_STRIDE;
    h->slot_size = slot_size;
    h->slot_stride = g.slot_stride;
    h->ctrl_offset = g.ctrl_offset;
    h->payload_offset = g.payload_offset;
    h->total_size = g.total_size;
    h->segment_id = segment_id;
    h->created_ns = created_ns;
    SPINE_STORE(&h->writer_cpu, -1, SPINE_RELAXED);
    for (i = 0; i < slot_count; i++) {
        spine_shm_slot_ctrl *c = spine_shm_ctrl(h, i);
        SPINE_STORE(&c->seq, 0, SPINE_RELAXED);
        SPINE_STORE(&c->frame_index, SPINE_SHM_NO_FRAME, SPINE_RELAXED);
        SPINE_STORE(&c->data_size, 0, SPINE_RELAXED);
        SPINE_STORE(&c->timestamp_ns, 0, SPINE_RELAXED);
    }
    SPINE_STORE(&h->magic, SPINE_SHM_MAGIC, SPINE_RELEASE);
    return 0;
}

/*
 * Claim the writer role: succeeds (returns 0) if nobody holds it or the
 * holder `dead_pid` (checked dead by the caller) still does; -1 if another
 * writer holds it.  A slot left odd by a writer killed between its two
 * counter increments is closed as empty, so its partial data is never read.
 */
static inline int spine_shm_claim(spine_shm_header *h, uint64_t my_pid, uint64_t my_start_ticks,
                                  uint64_t dead_pid)
{
    uint64_t expected = dead_pid;
    uint32_t i;
    if (!SPINE_CAS(&h->writer_pid, &expected, my_pid)) return -1;
    SPINE_STORE(&h->writer_start_ticks, my_start_ticks, SPINE_RELAXED);
    SPINE_FETCH_ADD(&h->writer_generation, 1, SPINE_SEQ_CST);
    for (i = 0; i < h->slot_count; i++) {
        spine_shm_slot_ctrl *c = spine_shm_ctrl(h, i);
        uint64_t s = SPINE_LOAD(&c->seq, SPINE_RELAXED);
        if (s & 1u) {
            /* finish the dead writer's critical section with an empty frame */
            SPINE_FENCE(SPINE_RELEASE);
            SPINE_STORE(&c->frame_index, SPINE_SHM_NO_FRAME, SPINE_RELAXED);
            SPINE_STORE(&c->data_size, 0, SPINE_RELAXED);
            SPINE_STORE(&c->seq, s + 1, SPINE_RELEASE);
        }
    }
    return 0;
}

/* Give up the writer role (clean shutdown). */
static inline void spine_shm_release(spine_shm_header *h, uint64_t my_pid)
{
    uint64_t expected = my_pid;
    SPINE_CAS(&h->writer_pid, &expected, 0);
}

/* Store n bytes at dst (word-aligned, inside a slot) with relaxed atomic word stores. */
static inline void spine_shm_store_bytes(spine_word_t *dst, const void *src, uint64_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    uint64_t words = n / 8, i, w;
    /* the bounds as separate variables: GCC then sees that the tail loop runs 0-3 times */
    uint64_t body = words - words % 4;
    for (i = 0; i < body; i += 4) {
        uint64_t a, b, c, d;
        memcpy(&a, s + 8 * i, 8);
        memcpy(&b, s + 8 * i + 8, 8);
        memcpy(&c, s + 8 * i + 16, 8);
        memcpy(&d, s + 8 * i + 24, 8);
        SPINE_WORD_STORE(dst + i, a);
        SPINE_WORD_STORE(dst + i + 1, b);
        SPINE_WORD_STORE(dst + i + 2, c);
        SPINE_WORD_STORE(dst + i + 3, d);
    }
    for (i = body; i < words; i++) {
        memcpy(&w, s + 8 * i, 8);
        SPINE_WORD_STORE(dst + i, w);
    }
    if (n % 8) {
        w = 0;
        memcpy(&w, s + 8 * words, n % 8);
        SPINE_WORD_STORE(dst + words, w);
    }
}

/*
 * Copy n bytes out of a slot with relaxed atomic word loads.  A copy that
 * follows a commit reads lines the writer's core has just stored; prefetching
 * 4 KiB ahead keeps enough of them in flight when those lines come from
 * another core's cache (1 MiB: 42-44 us instead of 45-50 us here; 2 us more
 * when both cores share their caches).  A prefetch is a hint, not an access.
 */
#if defined(__GNUC__) || defined(__clang__)
#define SPINE_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 0)
#else
#define SPINE_PREFETCH(p) ((void)0)
#endif
#define SPINE_SHM_PREFETCH_WORDS 512u

static inline void spine_shm_load_bytes(void *dst, spine_word_t *src, uint64_t n)
{
    unsigned char *d = (unsigned char *)dst;
    uint64_t words = n / 8, i, w;
    /* the bounds as separate variables: GCC then sees that the tail loop runs 0-7 times */
    uint64_t body = words - words % 8;
    uint64_t ahead = words > SPINE_SHM_PREFETCH_WORDS ? words - SPINE_SHM_PREFETCH_WORDS : 0;
    for (i = 0; i < body; i += 8) {
        uint64_t a, b, c, e, f, g, k, m;
        if (i < ahead) SPINE_PREFETCH(src + i + SPINE_SHM_PREFETCH_WORDS);
        a = SPINE_WORD_LOAD(src + i);
        b = SPINE_WORD_LOAD(src + i + 1);
        c = SPINE_WORD_LOAD(src + i + 2);
        e = SPINE_WORD_LOAD(src + i + 3);
        f = SPINE_WORD_LOAD(src + i + 4);
        g = SPINE_WORD_LOAD(src + i + 5);
        k = SPINE_WORD_LOAD(src + i + 6);
        m = SPINE_WORD_LOAD(src + i + 7);
        memcpy(d + 8 * i, &a, 8);
        memcpy(d + 8 * i + 8, &b, 8);
        memcpy(d + 8 * i + 16, &c, 8);
        memcpy(d + 8 * i + 24, &e, 8);
        memcpy(d + 8 * i + 32, &f, 8);
        memcpy(d + 8 * i + 40, &g, 8);
        memcpy(d + 8 * i + 48, &k, 8);
        memcpy(d + 8 * i + 56, &m, 8);
    }
    for (i = body; i < words; i++) {
        w = SPINE_WORD_LOAD(src + i);
        memcpy(d + 8 * i, &w, 8);
    }
    if (n % 8) {
        w = SPINE_WORD_LOAD(src + words);
        memcpy(d + 8 * words, &w, n % 8);
    }
}

typedef struct spine_shm_frame_info {
    uint64_t frame_index;
    uint32_t slot_index;
    uint64_t seq;          /* the slot's (even) counter after the write */
    uint64_t data_size;
    int64_t timestamp_ns;
    int64_t begun_ns;      /* writer only: CLOCK_MONOTONIC at write_begin */
} spine_shm_frame_info;

static inline int64_t spine_shm__now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The CPU this thread runs on, -1 if unknown (sched_getcpu is GNU; elsewhere the getcpu syscall). */
static inline int spine_shm__cpu(void)
{
#if defined(__USE_GNU)
    return sched_getcpu();
#else
    unsigned cpu;
    return syscall(SYS_getcpu, &cpu, NULL, NULL) == 0 ? (int)cpu : -1;
#endif
}

/* Bump the futex word and wake whoever sleeps on it (no syscall when nobody does). */
static inline void spine_shm__wake(spine_shm_header *h)
{
    SPINE_FETCH_ADD(&h->wake_seq, 1, SPINE_SEQ_CST);
    if (SPINE_LOAD(&h->waiters, SPINE_SEQ_CST) != 0)
        syscall(SYS_futex, (void *)&h->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Writer, step 1: open the next slot for writing (counter becomes odd).
 * Between begin and commit, fill the payload with spine_shm_store_bytes.
 */
static inline spine_word_t *spine_shm_write_begin(spine_shm_header *h, spine_shm_frame_info *info)
{
    uint64_t frame = SPINE_LOAD(&h->frame_count, SPINE_RELAXED);
    uint32_t slot = (uint32_t)(frame % h->slot_count);
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, slot);
    uint64_t s = SPINE_LOAD(&c->seq, SPINE_RELAXED);
    SPINE_STORE(&c->progress, 0, SPINE_RELAXED);
    /* release: a reader that sees the odd counter sees the progress reset too */
    SPINE_STORE(&c->seq, s + 1, SPINE_RELEASE);
    SPINE_FENCE(SPINE_RELEASE); /* the odd counter is visible before any data store */
    info->frame_index = frame;
    info->slot_index = slot;
    info->seq = s + 2;
    /*
     * Early wake-up: readers asleep on the futex wake now, while this write
     * runs, and follow it from their own CPU (spine_shm_wait), so the time a
     * sleeping CPU takes to wake up overlaps the write instead of following
     * the commit.  begun_ns, write_ns and writer_cpu only tell a woken reader
     * how long to poll; no correctness depends on them.
     */
    info->begun_ns = spine_shm__now_ns();
    SPINE_STORE(&h->writer_cpu, (int32_t)spine_shm__cpu(), SPINE_RELAXED);
    SPINE_STORE(&h->begun_ns, info->begun_ns, SPINE_RELAXED);
    spine_shm__wake(h);
    return spine_shm_payload(h, slot);
}

/* Writer, step 2: record metadata, make the counter even, publish, wake sleepers. */
static inline void spine_shm_write_commit(spine_shm_header *h, spine_shm_frame_info *info)
{
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, info->slot_index);
    SPINE_STORE(&c->frame_index, info->frame_index, SPINE_RELAXED);
    SPINE_STORE(&c->data_size, info->data_size, SPINE_RELAXED);
    SPINE_STORE(&c->timestamp_ns, info->timestamp_ns, SPINE_RELAXED);
    SPINE_STORE(&c->seq, info->seq, SPINE_RELEASE); /* all data stores before the even counter */
    SPINE_STORE(&h->frame_count, info->frame_index + 1, SPINE_RELEASE);
    SPINE_STORE(&h->write_ns, spine_shm__now_ns() - info->begun_ns, SPINE_RELAXED);
    spine_shm__wake(h); /* readers that went back to sleep, or came after the begin */
}

/*
 * Writer, between begin and commit: store the payload in chunks of
 * SPINE_SHM_CHUNK bytes, publishing after each how much is stored (release),
 * so that a copying reader can copy along behind the write
 * (spine_shm_copy_along) and hold the frame right after the commit.
 */
#define SPINE_SHM_CHUNK UINT64_C(65536)

static inline void spine_shm_store_payload(spine_shm_header *h, const spine_shm_frame_info *info, const void *src,
                                           uint64_t n)
{
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, info->slot_index);
    spine_word_t *dst = spine_shm_payload(h, info->slot_index);
    const unsigned char *s = (const unsigned char *)src;
    uint64_t done = 0;
    while (n - done > SPINE_SHM_CHUNK) {
        spine_shm_store_bytes(dst + done / 8, s + done, SPINE_SHM_CHUNK);
        done += SPINE_SHM_CHUNK;
        SPINE_STORE(&c->progress, done, SPINE_RELEASE);
    }
    spine_shm_store_bytes(dst + done / 8, s + done, n - done); /* the rest is published by the commit */
}

/* Writer: the whole frame in one call. Returns -1 if n exceeds the slot size. */
static inline int spine_shm_write(spine_shm_header *h, const void *data, uint64_t n, int64_t timestamp_ns,
                                  spine_shm_frame_info *info)
{
    if (n > h->slot_size) return -1;
    spine_shm_write_begin(h, info);
    spine_shm_store_payload(h, info, data, n);
    info->data_size = n;
    info->timestamp_ns = timestamp_ns;
    spine_shm_write_commit(h, info);
    return 0;
}

/* ---- reader ------------------------------------------------------------- */

/*
 * Copy frame `frame` into dst (capacity cap).  One attempt, no spinning: a
 * slot whose counter is odd or moves during the copy is being overwritten by
 * a newer frame, so the frame asked for is gone (SPINE_SHM_OVERWRITTEN).
 * A slot left odd by a dead writer reads as overwritten too.
 */
static inline spine_shm_status spine_shm_read_frame(spine_shm_header *h, uint64_t frame, void *dst, uint64_t cap,
                                                     spine_shm_frame_info *info)
{
    uint32_t slot = (uint32_t)(frame % h->slot_count);
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, slot);
    uint64_t s0, s1, fi, n;
    int64_t ts;
    if (frame >= SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE)) return SPINE_SHM_NOT_YET;
    s0 = SPINE_LOAD(&c->seq, SPINE_ACQUIRE);
    if (s0 & 1u) return SPINE_SHM_OVERWRITTEN;
    fi = SPINE_LOAD(&c->frame_index, SPINE_RELAXED);
    n = SPINE_LOAD(&c->data_size, SPINE_RELAXED);
    ts = SPINE_LOAD(&c->timestamp_ns, SPINE_RELAXED);
    if (fi != frame) {
        SPINE_FENCE(SPINE_ACQUIRE);
        return SPINE_SHM_OVERWRITTEN;
    }
    if (n > h->slot_size) n = h->slot_size; /* only a torn read can see this; caught below */
    if (n > cap) {
        info->data_size = n;
        return SPINE_SHM_BUFFER_SMALL;
    }
    spine_shm_load_bytes(dst, spine_shm_payload(h, slot), n);
    SPINE_FENCE(SPINE_ACQUIRE); /* the data loads before the re-check */
    s1 = SPINE_LOAD(&c->seq, SPINE_RELAXED);
    if (s1 != s0) return SPINE_SHM_OVERWRITTEN;
    info->frame_index = fi;
    info->slot_index = slot;
    info->seq = s0;
    info->data_size = n;
    info->timestamp_ns = ts;
    return SPINE_SHM_OK;
}

/*
 * Zero-copy reading: where frame `frame` lies, without copying it.  On
 * SPINE_SHM_OK, info says which slot and counter; read the payload in place
 * with relaxed atomic loads (spine_shm_load_bytes or SPINE_WORD_LOAD), then
 * call spine_shm_check: only if it returns true was what was read consistent.
 */
static inline spine_shm_status spine_shm_peek_frame(spine_shm_header *h, uint64_t frame, spine_shm_frame_info *info)
{
    uint32_t slot = (uint32_t)(frame % h->slot_count);
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, slot);
    if (frame >= SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE)) return SPINE_SHM_NOT_YET;
    info->slot_index = slot;
    info->seq = SPINE_LOAD(&c->seq, SPINE_ACQUIRE);
    info->frame_index = SPINE_LOAD(&c->frame_index, SPINE_RELAXED);
    info->data_size = SPINE_LOAD(&c->data_size, SPINE_RELAXED);
    info->timestamp_ns = SPINE_LOAD(&c->timestamp_ns, SPINE_RELAXED);
    if ((info->seq & 1u) || info->frame_index != frame || info->data_size > h->slot_size)
        return SPINE_SHM_OVERWRITTEN;
    return SPINE_SHM_OK;
}

/* After reading a peeked frame in place: whether its slot still holds it (everything read is consistent). */
static inline bool spine_shm_check(spine_shm_header *h, uint32_t slot, uint64_t seq)
{
    SPINE_FENCE(SPINE_ACQUIRE); /* the payload loads before the re-check */
    return SPINE_LOAD(&spine_shm_ctrl(h, slot)->seq, SPINE_RELAXED) == seq;
}

/* Copy the newest frame; retries (bounded) while the writer laps the reader. */
static inline spine_shm_status spine_shm_read_latest(spine_shm_header *h, void *dst, uint64_t cap,
                                                      spine_shm_frame_info *info, unsigned attempts)
{
    spine_shm_status st = SPINE_SHM_EMPTY;
    while (attempts--) {
        uint64_t fc = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
        if (fc == 0) return SPINE_SHM_EMPTY;
        st = spine_shm_read_frame(h, fc - 1, dst, cap, info);
        if (st != SPINE_SHM_OVERWRITTEN) return st;
    }
    return st;
}

/*
 * Follow the stream: copy frame *next or, if the reader lagged so far that the
 * writer has reused its slot, the oldest frame still in the ring (dst NULL:
 * peek at it instead, as spine_shm_peek_frame).  On SPINE_SHM_OK *next is the
 * frame after the one taken, and *skipped has grown by the frames passed over.
 * SPINE_SHM_NOT_YET: no frame at *next yet.  SPINE_SHM_OVERWRITTEN: the writer
 * lapped the reader `attempts` times in a row.
 */
static inline spine_shm_status spine_shm_read_next(spine_shm_header *h, uint64_t *next, void *dst, uint64_t cap,
                                                    spine_shm_frame_info *info, uint64_t *skipped,
                                                    unsigned attempts)
{
    /* the slot being written is never readable, so a lagging reader resumes slot_count - 1 back */
    uint64_t lag_limit = h->slot_count > 1 ? h->slot_count - 1u : 1u;
    spine_shm_status st = SPINE_SHM_OVERWRITTEN;
    while (attempts--) {
        uint64_t count = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
        uint64_t start = *next;
        if (start >= count) return SPINE_SHM_NOT_YET;
        if (count - start > lag_limit) start = count - lag_limit;
        *skipped += start - *next;
        *next = start;
        st = dst ? spine_shm_read_frame(h, start, dst, cap, info) : spine_shm_peek_frame(h, start, info);
        if (st == SPINE_SHM_OK) {
            *next = start + 1;
            return st;
        }
        if (st != SPINE_SHM_OVERWRITTEN) return st;
    }
    return st;
}

/*
 * How long a reader woken at a write's begin polls for its commit: the
 * latest write's duration and half again, plus SPINE_SHM_FOLLOW_SLACK_NS,
 * never more than the caller's follow_ns (SPINE_SHM_FOLLOW_NS by default).
 */
#define SPINE_SHM_FOLLOW_NS INT64_C(500000)
#define SPINE_SHM_FOLLOW_SLACK_NS INT64_C(20000)

#if defined(__x86_64__) || defined(__i386__)
#define SPINE_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define SPINE_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define SPINE_CPU_RELAX() ((void)0)
#endif

/* Whether frame `frame_count` (the next one) is being written: its slot's counter is odd. */
static inline int spine_shm__writing(spine_shm_header *h, uint64_t frame_count)
{
    return (int)(SPINE_LOAD(&spine_shm_ctrl(h, (uint32_t)(frame_count % h->slot_count))->seq, SPINE_ACQUIRE) & 1u);
}

/*
 * Until when (CLOCK_MONOTONIC) a woken reader follows the write in progress.
 * begun_ns and write_ns come from shared memory: both are clamped (a stale
 * or garbled value only shortens or lengthens the poll, within follow_ns).
 */
static inline int64_t spine_shm__follow_end(spine_shm_header *h, int64_t follow_ns, int64_t until_ns)
{
    int64_t now = spine_shm__now_ns(), end;
    int64_t begun = SPINE_LOAD(&h->begun_ns, SPINE_RELAXED);
    int64_t took = SPINE_LOAD(&h->write_ns, SPINE_RELAXED);
    if (follow_ns > INT64_C(1000000000)) follow_ns = INT64_C(1000000000);
    if (begun > now) begun = now;
    if (begun < now - follow_ns) begun = now - follow_ns;
    if (took < 0 || took > follow_ns) took = follow_ns;
    end = begun + took + took / 2 + SPINE_SHM_FOLLOW_SLACK_NS;
    if (end > begun + follow_ns) end = begun + follow_ns;
    if (until_ns >= 0 && end > until_ns) end = until_ns;
    return end;
}

/*
 * A reader woken while frame `seen` is being written: poll frame_count until
 * the commit, for as long as the write is expected to take, but only if the
 * writer runs on another CPU (on the writer's own CPU polling would only hold
 * the writer up).  Returns the frame count, which is still `seen` if the
 * commit did not come in time; the caller then sleeps again and the commit's
 * wake-up reaches it.  Polls no later than `until_ns` (CLOCK_MONOTONIC).
 */
static inline uint64_t spine_shm__follow(spine_shm_header *h, uint64_t seen, int64_t follow_ns, int64_t until_ns)
{
    uint64_t fc = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
    int64_t end;
    int32_t cpu;
    unsigned i;
    if (fc != seen || follow_ns <= 0) return fc;
    if (!spine_shm__writing(h, fc)) return fc;
    cpu = SPINE_LOAD(&h->writer_cpu, SPINE_RELAXED);
    if (cpu >= 0 && cpu == spine_shm__cpu()) return fc;
    end = spine_shm__follow_end(h, follow_ns, until_ns);
    while (spine_shm__now_ns() < end) {
        for (i = 0; i < 64; i++) {
            fc = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
            if (fc != seen) return fc;
            SPINE_CPU_RELAX();
        }
    }
    return SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
}

/* The futex sleep of spine_shm_wait_follow; with `until_begin` it also returns once frame `seen` is being written. */
static inline int64_t spine_shm__sleep(spine_shm_header *h, uint64_t seen, int64_t timeout_ns, int64_t follow_ns,
                                       int until_begin)
{
    int64_t start = spine_shm__now_ns(), left = timeout_ns;
    struct timespec rel;
    uint64_t fc;
    for (;;) {
        uint32_t w;
        long r;
        SPINE_FETCH_ADD(&h->waiters, 1, SPINE_SEQ_CST);
        w = SPINE_LOAD(&h->wake_seq, SPINE_SEQ_CST);
        fc = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
        if (fc > seen || (until_begin && fc == seen && spine_shm__writing(h, fc))) {
            SPINE_FETCH_SUB(&h->waiters, 1, SPINE_SEQ_CST);
            return (int64_t)fc;
        }
        if (timeout_ns >= 0) {
            rel.tv_sec = left / 1000000000;
            rel.tv_nsec = left % 1000000000;
        }
        r = syscall(SYS_futex, (void *)&h->wake_seq, FUTEX_WAIT, w, timeout_ns >= 0 ? &rel : NULL, NULL, 0);
        SPINE_FETCH_SUB(&h->waiters, 1, SPINE_SEQ_CST);
        if (r != 0 && errno == EINTR) return -1;
        fc = spine_shm__follow(h, seen, follow_ns, timeout_ns >= 0 ? start + timeout_ns : -1);
        if (fc > seen) return (int64_t)fc;
        if (timeout_ns >= 0) {
            left = timeout_ns - (spine_shm__now_ns() - start);
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
    }
}

/*
 * Sleep until frame_count exceeds `seen` or timeout_ns elapses (negative:
 * no limit).  Returns the frame count, or -1 with errno EINTR (a signal
 * arrived; the caller handles it and calls again) or ETIMEDOUT.
 * Sleeps on a futex on the shared wake counter.  The writer wakes it when a
 * write begins; the reader then polls for that write's commit for at most
 * follow_ns (0: never polls, sleeps until the commit's wake-up), see
 * spine_shm__follow.
 */
static inline int64_t spine_shm_wait_follow(spine_shm_header *h, uint64_t seen, int64_t timeout_ns,
                                            int64_t follow_ns)
{
    return spine_shm__sleep(h, seen, timeout_ns, follow_ns, 0);
}

/* spine_shm_wait_follow with the default follow time (SPINE_SHM_FOLLOW_NS). */
static inline int64_t spine_shm_wait(spine_shm_header *h, uint64_t seen, int64_t timeout_ns)
{
    return spine_shm_wait_follow(h, seen, timeout_ns, SPINE_SHM_FOLLOW_NS);
}

/*
 * Sleep until frame_count exceeds `seen` or the write of frame `seen` has
 * begun, or timeout_ns elapses (negative: no limit).  Returns the frame
 * count, or -1 with errno EINTR or ETIMEDOUT.
 */
static inline int64_t spine_shm_wait_begin(spine_shm_header *h, uint64_t seen, int64_t timeout_ns)
{
    return spine_shm__sleep(h, seen, timeout_ns, 0, 1);
}

/*
 * Copy frame `frame` into dst while the writer is still writing it: the
 * chunks the writer has published (slot progress, acquire) are copied as
 * they come, the rest after the commit, then the counter is checked as in
 * spine_shm_read_frame.  Consistent for the same reason: every byte copied
 * before the commit was stored by this write before its release of
 * `progress` (so nothing older is seen), and a byte of any later write would
 * make the final re-check fail (the later write's odd counter precedes its
 * data, release fence against the reader's acquire fence).  Copies along only
 * when the writer runs on another CPU, and for no longer than the write is
 * expected to take (as spine_shm__follow), nor past until_ns (negative: no
 * limit).  SPINE_SHM_NOT_YET: frame not begun, or not committed in time (the
 * caller sleeps until the commit); OVERWRITTEN: the slot moved on (the caller
 * takes the next frame); otherwise as spine_shm_read_frame.
 */
static inline spine_shm_status spine_shm_copy_along(spine_shm_header *h, uint64_t frame, void *dst, uint64_t cap,
                                                     spine_shm_frame_info *info, int64_t follow_ns, int64_t until_ns)
{
    uint32_t slot = (uint32_t)(frame % h->slot_count);
    spine_shm_slot_ctrl *c = spine_shm_ctrl(h, slot);
    spine_word_t *src = spine_shm_payload(h, slot);
    unsigned char *d = (unsigned char *)dst;
    uint64_t fc = SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE);
    uint64_t s0, s, done = 0, p, n, fi, limit;
    int64_t end, ts;
    int32_t cpu;
    if (fc > frame) return spine_shm_read_frame(h, frame, dst, cap, info);
    if (fc < frame || follow_ns <= 0) return SPINE_SHM_NOT_YET;
    s0 = SPINE_LOAD(&c->seq, SPINE_ACQUIRE);
    if (!(s0 & 1u)) return SPINE_SHM_NOT_YET;
    cpu = SPINE_LOAD(&h->writer_cpu, SPINE_RELAXED);
    if (cpu >= 0 && cpu == spine_shm__cpu()) return SPINE_SHM_NOT_YET;
    end = spine_shm__follow_end(h, follow_ns, until_ns);
    limit = (cap < h->slot_size ? cap : h->slot_size) & ~UINT64_C(7); /* copied in whole words before the commit */
    for (;;) {
        unsigned i;
        p = SPINE_LOAD(&c->progress, SPINE_ACQUIRE);
        if (p > limit) p = limit;
        if (p > done) {
            spine_shm_load_bytes(d + done, src + done / 8, p - done);
            done = p;
        }
        s = SPINE_LOAD(&c->seq, SPINE_ACQUIRE);
        if (s != s0) break;
        if (spine_shm__now_ns() >= end) return SPINE_SHM_NOT_YET;
        for (i = 0; i < 16; i++) SPINE_CPU_RELAX();
    }
    if (s != s0 + 1) return SPINE_SHM_OVERWRITTEN; /* lapped: the next read catches up */
    fi = SPINE_LOAD(&c->frame_index, SPINE_RELAXED);
    n = SPINE_LOAD(&c->data_size, SPINE_RELAXED);
    ts = SPINE_LOAD(&c->timestamp_ns, SPINE_RELAXED);
    if (fi != frame) return SPINE_SHM_OVERWRITTEN; /* the odd counter was a later lap's write */
    if (n > h->slot_size) n = h->slot_size; /* only a torn read can see this; caught below */
    if (n > cap) {
        info->data_size = n;
        return SPINE_SHM_BUFFER_SMALL;
    }
    if (done > n) done = n & ~UINT64_C(7);
    spine_shm_load_bytes(d + done, src + done / 8, n - done);
    SPINE_FENCE(SPINE_ACQUIRE); /* the data loads before the re-check */
    if (SPINE_LOAD(&c->seq, SPINE_RELAXED) != s) return SPINE_SHM_OVERWRITTEN;
    info->frame_index = fi;
    info->slot_index = slot;
    info->seq = s;
    info->data_size = n;
    info->timestamp_ns = ts;
    return SPINE_SHM_OK;
}

/*
 * Follow the stream, waiting: spine_shm_read_next, and while frame *next is
 * not there yet, sleep for it (up to timeout_ns; negative: no limit).  With a
 * destination and follow_ns > 0 the reader wakes when the frame's write
 * begins and copies along behind it (spine_shm_copy_along); without one
 * (peeking) it polls for the commit (spine_shm_wait_follow).  Returns what
 * spine_shm_read_next returns; SPINE_SHM_NOT_YET with *err ETIMEDOUT after the
 * timeout, or EINTR when a signal arrived (handle it, then call again).
 */
static inline spine_shm_status spine_shm_wait_next(spine_shm_header *h, uint64_t *next, void *dst, uint64_t cap,
                                                    spine_shm_frame_info *info, uint64_t *skipped,
                                                    unsigned attempts, int64_t timeout_ns, int64_t follow_ns,
                                                    int *err)
{
    int64_t start = spine_shm__now_ns(), left = timeout_ns;
    int64_t until = timeout_ns >= 0 ? start + timeout_ns : -1;
    int along = dst != NULL && follow_ns > 0;
    *err = 0;
    for (;;) {
        spine_shm_status st = spine_shm_read_next(h, next, dst, cap, info, skipped, attempts);
        int64_t r;
        if (st != SPINE_SHM_NOT_YET) return st;
        if (along) {
            st = spine_shm_copy_along(h, *next, dst, cap, info, follow_ns, until);
            if (st == SPINE_SHM_OK) {
                *next += 1;
                return st;
            }
            if (st == SPINE_SHM_BUFFER_SMALL) return st;
            if (st == SPINE_SHM_OVERWRITTEN) continue; /* read_next catches up */
        }
        if (timeout_ns >= 0) {
            left = timeout_ns - (spine_shm__now_ns() - start);
            if (left <= 0) {
                *err = ETIMEDOUT;
                return SPINE_SHM_NOT_YET;
            }
        }
        if (!along)
            r = spine_shm_wait_follow(h, *next, left, follow_ns);
        else if (SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE) == *next && spine_shm__writing(h, *next))
            r = spine_shm_wait_follow(h, *next, left, 0); /* gave up copying along: sleep until the commit */
        else
            r = spine_shm_wait_begin(h, *next, left);
        if (r < 0) {
            *err = errno;
            return SPINE_SHM_NOT_YET;
        }
    }
}

#ifdef __cplusplus
}
#endif
#endif /* SPINE_SHM_H */
