/* Peak-throughput loops for echogen_trt.bench.peak (x86-64, gcc >= 11 or clang >= 12).
 *
 * Each kernel runs `iters` iterations of 16 (12 for 256-bit) independent vector operations:
 * enough accumulators to cover the instruction latency on two ports, so the loop is bound by
 * throughput alone. It returns a value derived from every accumulator, so the compiler cannot
 * drop the work. Clock loops run a chain of 64 dependent register-register adds per iteration
 * (1 cycle each; an add of an immediate would not do: Golden Cove renames such chains away) next
 * to one vector FMA of the width being measured, so the clock is the one that unit runs at.
 * Functions carry their own target attributes: the file compiles on any x86-64 CPU, and Python
 * calls only the kernels whose flags /proc/cpuinfo lists. */
#include <immintrin.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

#define REP16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ADDS64 ".rept 64\n\taddq %1, %0\n\t.endr"

__attribute__((target("avx2,fma"))) double fma256(long iters) {
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
#define DECL(i) __m256 c##i = _mm256_set1_ps((float)i);
    REP12(DECL)
#undef DECL
    for (long n = 0; n < iters; n++) {
#define STEP(i) c##i = _mm256_fmadd_ps(c##i, a, b);
        REP12(STEP)
#undef STEP
        __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    }
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, c##i);
    REP12(SUM)
#undef SUM
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) double fma512(long iters) {
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
#define DECL(i) __m512 c##i = _mm512_set1_ps((float)i);
    REP16(DECL)
#undef DECL
    for (long n = 0; n < iters; n++) {
#define STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
        REP16(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    REP16(SUM)
#undef SUM
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512vnni"))) double vnni512(long iters) {
    __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
#define DECL(i) __m512i c##i = _mm512_set1_epi32(i);
    REP16(DECL)
#undef DECL
    for (long n = 0; n < iters; n++) {
#define STEP(i) c##i = _mm512_dpbusd_epi32(c##i, a, b);
        REP16(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    __m512i s = _mm512_setzero_si512();
#define SUM(i) s = _mm512_add_epi32(s, c##i);
    REP16(SUM)
#undef SUM
    return (double)_mm512_reduce_add_epi32(s);
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_512(long iters) {
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3a83);
#define DECL(i) __m512 c##i = _mm512_set1_ps((float)i);
    REP16(DECL)
#undef DECL
    for (long n = 0; n < iters; n++) {
#define STEP(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
        REP16(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    REP16(SUM)
#undef SUM
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) double clock256(long iters) {
    uint64_t x = 0, one = 1;
    __m256 a = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1.0f);
    for (long n = 0; n < iters; n++) {
        __asm__ volatile(ADDS64 : "+r"(x) : "r"(one));
        c = _mm256_fmadd_ps(c, a, a);
        __asm__ volatile("" : "+x"(c));
    }
    float out[8];
    _mm256_storeu_ps(out, c);
    return (double)x + out[0];
}

__attribute__((target("avx512f"))) double clock512(long iters) {
    uint64_t x = 0, one = 1;
    __m512 a = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1.0f);
    for (long n = 0; n < iters; n++) {
        __asm__ volatile(ADDS64 : "+r"(x) : "r"(one));
        c = _mm512_fmadd_ps(c, a, a);
        __asm__ volatile("" : "+v"(c));
    }
    return (double)x + _mm512_reduce_add_ps(c);
}

/* AMX: Linux hands out the tile data state only on request (arch_prctl ARCH_REQ_XCOMP_PERM). */
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

int amx_enable(void) {
    return (int)syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */);
}

static int8_t tile_a[16 * 64], tile_b[16 * 64];
static int32_t tile_c[16 * 16];

/* Four independent 16x16 accumulator tiles (0-3) fed by two A tiles (4, 5) and two B tiles
 * (6, 7), every tile full size: 16 rows x 64 bytes. */
#define AMX_LOOP(OP)                                                                     \
    struct tile_config cfg = {0};                                                      \
    cfg.palette = 1;                                                                   \
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }               \
    _tile_loadconfig(&cfg);                                                            \
    for (int t = 0; t < 16 * 64; t++) { tile_a[t] = 1; tile_b[t] = 0; }                \
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);                        \
    _tile_loadd(4, tile_a, 64); _tile_loadd(5, tile_a, 64);                            \
    _tile_loadd(6, tile_b, 64); _tile_loadd(7, tile_b, 64);                            \
    for (long n = 0; n < iters; n++) {                                                 \
        OP(0, 4, 6); OP(1, 4, 7); OP(2, 5, 6); OP(3, 5, 7);                            \
    }                                                                                  \
    _tile_stored(0, tile_c, 64);                                                       \
    _tile_release();                                                                   \
    return (double)tile_c[0];

__attribute__((target("amx-tile,amx-int8"))) double amx_int8(long iters) { AMX_LOOP(_tile_dpbssd) }
__attribute__((target("amx-tile,amx-bf16"))) double amx_bf16(long iters) { AMX_LOOP(_tile_dpbf16ps) }
