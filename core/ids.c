/* core/ids.c -- UUIDv7 generation with a per-millisecond counter. */
#include "core/ids.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"
#include "core/mem.h"

struct fl_ids {
    const fl_clock *clock;
    pthread_mutex_t mu;
    int64_t last_ms;  /* guarded by mu */
    uint16_t counter; /* guarded by mu: the 12-bit rand_a */
};

fl_ids *fl_ids_new(const fl_clock *clock)
{
    fl_ids *ids = fl_xcalloc(1, sizeof(*ids));

    ids->clock = clock;
    pthread_mutex_init(&ids->mu, NULL);
    return ids;
}

void fl_ids_free(fl_ids *ids)
{
    if (!ids) {
        return;
    }
    pthread_mutex_destroy(&ids->mu);
    free(ids);
}

/* Each thread draws 256 bytes per getrandom call and hands them out in slices: ids and
 * trace ids take 10-26 random bytes per request, and one system call each was a
 * measurable share of the API's hot path. They are identifiers, not secrets (API keys
 * read getrandom directly, api/keys_format.c). */
enum { POOL_BYTES = 256 };

static _Thread_local uint8_t pool[POOL_BYTES];
static _Thread_local size_t pool_left;

static void refill(void)
{
    size_t got = 0;

    while (got < POOL_BYTES) {
        ssize_t r = getrandom(pool + got, POOL_BYTES - got, 0);
        fl_assert(r > 0); /* getrandom on Linux >= 3.17 only fails on bad arguments */
        got += (size_t)r;
    }
    pool_left = POOL_BYTES;
}

void fl_random_bytes(void *out, size_t n)
{
    uint8_t *p = out;

    while (n > 0) {
        size_t take;
        if (pool_left == 0) {
            refill();
        }
        take = n < pool_left ? n : pool_left;
        memcpy(p, pool + POOL_BYTES - pool_left, take); /* each byte handed out once */
        pool_left -= take;
        p += take;
        n -= take;
    }
}

/* Picks (ms, counter) so that the pair strictly increases across calls. */
static void next_tick(fl_ids *ids, int64_t *ms, uint16_t *counter)
{
    int64_t now = fl_clock_now_ms(ids->clock);
    uint8_t seed[2];

    pthread_mutex_lock(&ids->mu);
    if (now > ids->last_ms) {
        fl_random_bytes(seed, sizeof(seed));
        ids->last_ms = now;
        ids->counter = (uint16_t)(((seed[0] << 8) | seed[1]) & 0x7ff); /* leave room to count */
    } else if (++ids->counter > 0xfff) {
        ids->last_ms++; /* counter overflow: borrow the next millisecond */
        ids->counter = 0;
    }
    *ms = ids->last_ms;
    *counter = ids->counter;
    pthread_mutex_unlock(&ids->mu);
}

void fl_ids_uuid7_bytes(fl_ids *ids, uint8_t out[16])
{
    int64_t ms;
    uint16_t counter;

    next_tick(ids, &ms, &counter);
    fl_random_bytes(out + 8, 8);
    for (int i = 0; i < 6; i++) {
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    }
    out[6] = (uint8_t)(0x70 | (counter >> 8)); /* version 7 */
    out[7] = (uint8_t)counter;
    out[8] = (uint8_t)(0x80 | (out[8] & 0x3f)); /* variant 10 */
}

void fl_ids_uuid7(fl_ids *ids, char out[FL_UUID_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    size_t n = 0;

    fl_ids_uuid7_bytes(ids, b);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[n++] = '-';
        }
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 0xf];
    }
    out[n] = '\0';
}
