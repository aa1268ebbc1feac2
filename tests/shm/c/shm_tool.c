/*
 * A C writer/reader of spine waveform segments, built from native/spine_shm.h
 * alone, for the interoperability and crash tests.
 *
 *   shm_tool write NAME SLOTS SIZE FRAMES   create, write FRAMES frames, print "written",
 *                                            wait for a line on stdin, unlink, exit
 *   shm_tool read NAME FRAMES                follow FRAMES frames from the start, check them,
 *                                            print "ok <frames read> <skipped>"
 *   shm_tool crash NAME SLOTS SIZE           write 3 frames, start a 4th, print "mid-write", pause
 *
 * Frame k's payload: little-endian 64-bit words, word i = k * 0x9E3779B97F4A7C15 + i.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "spine_shm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

static uint64_t pattern(uint64_t frame, uint64_t i) { return frame * UINT64_C(0x9E3779B97F4A7C15) + i; }

static void fill(uint64_t *buf, uint64_t frame, uint64_t size)
{
    for (uint64_t i = 0; i < size / 8; i++) buf[i] = pattern(frame, i);
}

static spine_shm_header *create(const char *name, uint32_t slots, uint64_t size)
{
    spine_shm_geometry g;
    if (spine_shm_geometry_of(slots, size, &g) != 0) exit(2);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)g.total_size) != 0) { perror("shm_open"); exit(2); }
    void *base = mmap(NULL, g.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) { perror("mmap"); exit(2); }
    if (spine_shm_init(base, g.total_size, slots, size, 42, 0) != 0) exit(2);
    if (spine_shm_claim((spine_shm_header *)base, (uint64_t)getpid(), 0, 0) != 0) exit(2);
    return (spine_shm_header *)base;
}

static int do_write(const char *name, uint32_t slots, uint64_t size, uint64_t frames)
{
    spine_shm_header *h = create(name, slots, size);
    uint64_t *buf = (uint64_t *)malloc(size);
    spine_shm_frame_info info;
    char line[16];
    for (uint64_t k = 0; k < frames; k++) {
        fill(buf, k, size);
        if (spine_shm_write(h, buf, size, (int64_t)k, &info) != 0) return 3;
    }
    printf("written\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) { /* EOF is as good as a line */ }
    spine_shm_release(h, (uint64_t)getpid());
    shm_unlink(name);
    free(buf);
    return 0;
}

static int do_read(const char *name, uint64_t frames)
{
    int fd = shm_open(name, O_RDWR, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror("shm_open"); return 2; }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) { perror("mmap"); return 2; }
    if (spine_shm_validate(base, (uint64_t)st.st_size) != SPINE_SHM_OK) { fprintf(stderr, "bad layout\n"); return 4; }
    spine_shm_header *h = (spine_shm_header *)base;
    uint64_t *buf = (uint64_t *)malloc(h->slot_size);
    uint64_t next = 0, got = 0, skipped = 0;
    spine_shm_frame_info info;
    while (next < frames) {
        if (spine_shm_wait(h, next, INT64_C(10000000000)) < 0) { fprintf(stderr, "timeout at %llu\n", (unsigned long long)next); return 5; }
        spine_shm_status s = spine_shm_read_next(h, &next, buf, h->slot_size, &info, &skipped, 64);
        if (s == SPINE_SHM_NOT_YET) continue;
        if (s != SPINE_SHM_OK) { fprintf(stderr, "status %d\n", (int)s); return 6; }
        for (uint64_t i = 0; i < info.data_size / 8; i++)
            if (buf[i] != pattern(info.frame_index, i)) { fprintf(stderr, "torn frame %llu\n", (unsigned long long)info.frame_index); return 7; }
        got++;
    }
    printf("ok %llu %llu\n", (unsigned long long)got, (unsigned long long)skipped);
    return 0;
}

static int do_crash(const char *name, uint32_t slots, uint64_t size)
{
    spine_shm_header *h = create(name, slots, size);
    uint64_t *buf = (uint64_t *)malloc(size);
    spine_shm_frame_info info;
    for (uint64_t k = 0; k < 3; k++) {
        fill(buf, k, size);
        spine_shm_write(h, buf, size, (int64_t)k, &info);
    }
    fill(buf, 3, size);
    spine_word_t *dst = spine_shm_write_begin(h, &info);
    spine_shm_store_bytes(dst, buf, size / 2);
    printf("mid-write\n");
    fflush(stdout);
    for (;;) pause();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "write") == 0)
        return do_write(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "read") == 0) return do_read(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 5 && strcmp(argv[1], "crash") == 0)
        return do_crash(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: shm_tool write|read|crash ...\n");
    return 1;
}
