/* Picks the kernels of one ISA at load time and on request.
 *
 * ISAs are listed per architecture from least to most capable, each one a
 * superset of the ones before it, so a table is built by applying the
 * registrations of every ISA up to the chosen one on top of generic. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "ot_internal.h"

/* The CPUs this process may run on (its affinity mask, as taskset or a
 * container's cpuset leave it), at least 1. */
static int usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

struct isa_entry {
    const char *name;
    void (*reg)(struct ot_kernels *t);
    int (*supported)(void);
};

#if defined(__x86_64__) || defined(_M_X64)
static int cpu_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
static int cpu_avx512(void) {
    return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
static int cpu_avx512vnni(void) { return cpu_avx512() && __builtin_cpu_supports("avx512vnni"); }
#ifdef OT_HAVE_avx2
void ot_register_avx2(struct ot_kernels *t);
#endif
#ifdef OT_HAVE_avx512
void ot_register_avx512(struct ot_kernels *t);
#endif
#ifdef OT_HAVE_avx512vnni
void ot_register_avx512vnni(struct ot_kernels *t);
#endif
#endif

#if defined(__aarch64__)
/* NEON is part of the arm64 baseline; dotprod and i8mm are optional and
 * reported by the kernel in the auxiliary vector. */
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
static int cpu_neon_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
static int cpu_neon_i8mm(void) { return cpu_neon_dotprod() && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0; }
#else
static int cpu_neon_dotprod(void) { return 0; }
static int cpu_neon_i8mm(void) { return 0; }
#endif
#ifdef OT_HAVE_neon
void ot_register_neon(struct ot_kernels *t);
#endif
#ifdef OT_HAVE_neon_dotprod
void ot_register_neon_dotprod(struct ot_kernels *t);
#endif
#ifdef OT_HAVE_neon_i8mm
void ot_register_neon_i8mm(struct ot_kernels *t);
#endif
#endif

static int cpu_any(void) { return 1; }

static const struct isa_entry ISAS[] = {
    {"generic", ot_register_generic, cpu_any},
#if defined(__x86_64__) || defined(_M_X64)
#ifdef OT_HAVE_avx2
    {"avx2", ot_register_avx2, cpu_avx2},
#endif
#ifdef OT_HAVE_avx512
    {"avx512", ot_register_avx512, cpu_avx512},
#endif
#ifdef OT_HAVE_avx512vnni
    {"avx512vnni", ot_register_avx512vnni, cpu_avx512vnni},
#endif
#endif
#if defined(__aarch64__)
#ifdef OT_HAVE_neon
    {"neon", ot_register_neon, cpu_any},
#endif
#ifdef OT_HAVE_neon_dotprod
    {"neon_dotprod", ot_register_neon_dotprod, cpu_neon_dotprod},
#endif
#ifdef OT_HAVE_neon_i8mm
    {"neon_i8mm", ot_register_neon_i8mm, cpu_neon_i8mm},
#endif
#endif
};
#define NISAS ((int)(sizeof(ISAS) / sizeof(ISAS[0])))

static struct ot_kernels active;
static int active_isa;
static int nthreads = 1;
static char available[128];

const struct ot_kernels *ot_active(void) { return &active; }
int ot_nthreads(void) { return nthreads; }

static int isa_index(const char *name) {
    for (int i = 0; i < NISAS; i++)
        if (name && strcmp(ISAS[i].name, name) == 0)
            return ISAS[i].supported() ? i : -1;
    return -1;
}

static int best_isa(void) {
    int best = 0;
    for (int i = 0; i < NISAS; i++)
        if (ISAS[i].supported())
            best = i;
    return best;
}

static void select_isa(int index) {
    struct ot_kernels t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i <= index; i++)
        ISAS[i].reg(&t);
    active = t;
    active_isa = index;
}

__attribute__((constructor)) static void ot_init(void) {
    size_t used = 0;
    for (int i = 0; i < NISAS; i++) {
        if (!ISAS[i].supported())
            continue;
        const size_t len = strlen(ISAS[i].name);
        if (used + len + 2 > sizeof available)
            break;
        if (used)
            available[used++] = ',';
        memcpy(available + used, ISAS[i].name, len + 1);
        used += len;
    }
    nthreads = usable_cpus();
    /* An unknown or unsupported name falls back to the best ISA; the caller
     * sees the difference through ot_isa(). */
    const int wanted = isa_index(getenv("OPENTRANSFORMER_ISA"));
    select_isa(wanted >= 0 ? wanted : best_isa());
}

const char *ot_isa(void) { return ISAS[active_isa].name; }
const char *ot_isa_available(void) { return available; }

int ot_set_isa(const char *name) {
    const int index = isa_index(name);
    if (index < 0)
        return -1;
    select_isa(index);
    return 0;
}

void ot_set_threads(int n) {
    nthreads = n > 0 ? n : usable_cpus();
}

int ot_threads(void) { return nthreads; }

void ot_parallel_ranges(int64_t n, int64_t work, int per_thread, ot_range_fn fn, void *ctx) {
    const int nth = n < nthreads ? (int)n : nthreads;
    if (nth <= 1 || work < OT_PARALLEL_MIN) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    /* Ranges go to whichever thread asks next rather than one share per
     * thread up front, and the caller waits only for ranges already begun
     * (thread_pool.c): on a busy machine a thread that lost its core would
     * otherwise hold the region up. Every index is computed whole by one
     * call, so results do not depend on who ran it. */
    const int64_t ranges = (int64_t)(per_thread > 0 ? per_thread : 1) * nth;
    ot_pool_run(n, n < ranges ? n : ranges, nth, fn, ctx);
}

void ot_parallel_for(int64_t n, int64_t work, ot_range_fn fn, void *ctx) {
    ot_parallel_ranges(n, work, OT_RANGES_PER_THREAD, fn, ctx);
}
