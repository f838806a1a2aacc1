/* The workers behind ot_parallel_for.
 *
 * An OpenMP region ends in a barrier that waits for every thread of the team,
 * including one that has not even started because another process (or the
 * server's own event loop) holds its core: on a 2-core machine that cost a
 * whole scheduler time slice (8 ms) per region. Here the calling thread takes
 * ranges itself and waits only for ranges another thread has actually begun;
 * a worker that wakes late finds nothing left and goes back to waiting.
 *
 * A job is published by bumping the epoch in `ticket`, which also holds the
 * job's range count and the next range; a range is claimed by a
 * compare-and-swap on it. A claim succeeds only while its job is unfinished,
 * and the caller writes the next job's parameters only after that, so a
 * worker that copied parameters in passing never runs a range with a later
 * job's parameters. Callers are one at a time; a second caller (or a
 * range that itself runs ot_parallel_for) runs its job alone. Workers spin briefly between jobs
 * (a decode step's regions follow each other within microseconds), then
 * sleep on a condition variable.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "ot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define OT_POOL_MAX 256
/* ticket: epoch (32 bits) | ranges (16) | next range (16) */
#define T_EPOCH(t) ((uint32_t)((t) >> 32))
#define T_RANGES(t) ((int64_t)(((t) >> 16) & 0xffff))
#define T_NEXT(t) ((int64_t)((t) & 0xffff))
#define OT_SPIN_ROUNDS 8000 /* pause instructions before a worker sleeps: ~0.1 ms */
#define OT_YIELD_EVERY 64   /* while spinning, let a waiting thread (the server's event loop) have the core */

struct pool_job {
    ot_range_fn fn;
    void *ctx;
    int64_t n;
    int nth; /* threads that take part: the caller and workers 1 .. nth - 1 */
};

static struct {
    pthread_mutex_t run; /* held by the caller of the current job */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t ticket;
    _Atomic int64_t done;    /* ranges of the current job finished */
    struct pool_job job;
    int started; /* workers created, under lock */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}, 0};

static _Thread_local int thread_index;

int ot_thread_index(void) { return thread_index; }

static inline void pause_once(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claim and run ranges of the job of `epoch` until none is left. */
static void run_ranges(uint32_t epoch, const struct pool_job *job) {
    uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    for (;;) {
        if (T_EPOCH(t) != epoch || T_NEXT(t) >= T_RANGES(t))
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        const int64_t c = T_NEXT(t), chunks = T_RANGES(t);
        const int64_t begin = job->n * c / chunks, end = job->n * (c + 1) / chunks;
        if (begin < end)
            job->fn(job->ctx, begin, end);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    thread_index = (int)(intptr_t)arg;
    uint32_t seen = T_EPOCH(atomic_load_explicit(&pool.ticket, memory_order_acquire));
    for (;;) {
        uint32_t epoch;
        int spins = 0;
        while ((epoch = T_EPOCH(atomic_load_explicit(&pool.ticket, memory_order_acquire))) == seen) {
            if (++spins < OT_SPIN_ROUNDS) {
                if (spins % OT_YIELD_EVERY == 0)
                    sched_yield();
                else
                    pause_once();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while (T_EPOCH(atomic_load_explicit(&pool.ticket, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = epoch;
        const struct pool_job job = pool.job; /* may be torn by a later job: see the top */
        if (thread_index < job.nth)
            run_ranges(epoch, &job);
    }
    return NULL;
}

void ot_pool_run(int64_t n, int64_t chunks, int nth, ot_range_fn fn, void *ctx) {
    if (nth > OT_POOL_MAX)
        nth = OT_POOL_MAX;
    if (chunks > 0xffff)
        chunks = 0xffff;
    if (pthread_mutex_trylock(&pool.run) != 0) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.started < nth - 1) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, worker, (void *)(intptr_t)(pool.started + 1)) != 0)
            break;
        pthread_detach(tid);
        pool.started++;
    }
    const uint32_t epoch = T_EPOCH(atomic_load_explicit(&pool.ticket, memory_order_relaxed)) + 1;
    pool.job = (struct pool_job){fn, ctx, n, nth};
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.ticket, (uint64_t)epoch << 32 | (uint64_t)chunks << 16, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    const struct pool_job job = pool.job;
    run_ranges(epoch, &job);
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < chunks)
        pause_once();
    pthread_mutex_unlock(&pool.run);
}
