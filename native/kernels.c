/* Host-side numeric kernels over logits rows that llama.cpp wrote. The TypeScript sampling code has
 * pure versions of each (src/sampling/); these exist because a scalar JS loop over a 32k-150k vocab
 * row costs ~25 us per sequence per step, which dominates host time at batch 16. */
#include "shim.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLMSHIM_X86 1
#endif

/* reference: the first index of the largest value; NaN never wins; 0 when every value is NaN */
static int32_t argmax_scalar(const float * x, int32_t n) {
    int32_t best = 0;
    while (best < n && x[best] != x[best]) best++;
    if (best == n) return 0;
    float top = x[best];
    for (int32_t i = best + 1; i < n; i++) {
        if (x[i] > top) { top = x[i]; best = i; }
    }
    return best;
}

#ifdef LLMSHIM_X86
/* two passes: the maximum (vmaxps; a NaN in the first operand yields the second, so NaN never wins),
 * then the first index equal to it. -0 == +0, so a tie between zeros goes to the first, as above. */
__attribute__((target("avx2")))
static int32_t argmax_avx2(const float * x, int32_t n) {
    __m256 a0 = _mm256_set1_ps(-INFINITY), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_max_ps(_mm256_loadu_ps(x + i), a0);
        a1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), a3);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
    float top = lanes[0];
    for (int k = 1; k < 8; k++) if (lanes[k] > top) top = lanes[k];
    for (; i < n; i++) if (x[i] > top) top = x[i];
    /* top is -inf when every value is NaN or -inf; then the first -inf is the answer (or 0) */
    const __m256 want = _mm256_set1_ps(top);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + j), want, _CMP_EQ_OQ));
        if (mask) return j + __builtin_ctz((unsigned) mask);
    }
    for (; j < n; j++) if (x[j] == top) return j;
    return 0;
}
#endif

int32_t llmshim_argmax(const float * x, int32_t n) {
    if (!x || n <= 0) return 0;
#ifdef LLMSHIM_X86
    static int avx2 = -1;
    if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (avx2) return argmax_avx2(x, n);
#endif
    return argmax_scalar(x, n);
}

int32_t llmshim_argmax_scalar(const float * x, int32_t n) {
    return (!x || n <= 0) ? 0 : argmax_scalar(x, n);
}
