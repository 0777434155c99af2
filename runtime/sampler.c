/* sampler.c: penalties, greedy/top-k/temperature/top-p/min-p sampling, the serialisable sampler
 * state, and the stop-string matcher (sampler.h). Semantics follow llama.cpp's samplers
 * (common/sampling.cpp, src/llama-sampling.cpp) for the shared knobs and ChatRWKV's generate loop
 * (rwkv pip utils.py: occurrence *= alpha_decay, then += 1) for the decayed counts.
 * Cost per draw for V = 65536: O(V) to copy and penalise, O(V log k) for top-k, and without
 * top-k O(V) for top-p (histogram, then ordering only the bucket where the mass is crossed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampler.h"
#include "status.h"

struct rwkv7_cand {
    float v;    /* logit, then unnormalised probability */
    int32_t id; /* token id */
};

struct rwkv7_sampler {
    struct rwkv7_sampler_params p;
    int n_vocab;              /* V */
    uint64_t seed;            /* seed in use */
    uint64_t rng[4];          /* xoshiro256** state */
    float *count;             /* (V) decayed occurrence counts */
    int32_t *ring;            /* (repeat_last_n) last accepted tokens, oldest at ring_head once full */
    int ring_head;            /* next slot to write */
    int ring_fill;            /* valid entries, <= repeat_last_n */
    float *logit;             /* (V) scratch: penalised logits */
    struct rwkv7_cand *cand;  /* (V) scratch: candidates */
    unsigned char *mark;      /* (V) scratch: all zero between calls */
};

/* ---- random numbers: splitmix64 seeding, xoshiro256** (Blackman & Vigna) ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static void rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

/* ---- params, lifetime ---- */

void rwkv7_sampler_params_default(struct rwkv7_sampler_params *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->penalty_decay = 0.996f;
    p->seed = RWKV7_SEED_RANDOM;
}

void rwkv7_sampler_free(struct rwkv7_sampler *s) {
    if (!s) return;
    free(s->count);
    free(s->ring);
    free(s->logit);
    free(s->cand);
    free(s->mark);
    free(s);
}

enum rwkv7_status rwkv7_sampler_init(const struct rwkv7_sampler_params *p, int n_vocab,
                                     struct rwkv7_sampler **out) {
    *out = NULL;
    if (n_vocab < 1) return rwkv7_fail(RWKV7_ERR_ARG, "sampler: n_vocab %d", n_vocab);
    if (isnan(p->temperature))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: temperature is NaN");
    if (p->top_k < 0) return rwkv7_fail(RWKV7_ERR_ARG, "sampler: top_k %d < 0", p->top_k);
    if (!(p->top_p >= 0.0f))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: top_p %g outside [0, 1]", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: min_p %g outside [0, 1]", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: repeat_penalty %g must be > 0",
                          (double)p->repeat_penalty);
    if (p->repeat_last_n < 0 || p->repeat_last_n > (1 << 24))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: repeat_last_n %d outside 0..%d",
                          p->repeat_last_n, 1 << 24);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: presence/frequency penalty is not finite");
    if (!(p->penalty_decay >= 0.0f && p->penalty_decay <= 1.0f))
        return rwkv7_fail(RWKV7_ERR_ARG, "sampler: penalty_decay %g outside [0, 1]",
                          (double)p->penalty_decay);
    struct rwkv7_sampler *s = calloc(1, sizeof *s);
    if (!s) return rwkv7_fail(RWKV7_ERR_OOM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->ring = calloc((size_t)(p->repeat_last_n ? p->repeat_last_n : 1), sizeof *s->ring);
    s->logit = malloc((size_t)n_vocab * sizeof *s->logit);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->mark = calloc((size_t)n_vocab, 1);
    if (!s->count || !s->ring || !s->logit || !s->cand || !s->mark) {
        rwkv7_sampler_free(s);
        return rwkv7_fail(RWKV7_ERR_OOM, "sampler: out of memory for %d logits", n_vocab);
    }
    s->seed = p->seed;
    if (s->seed == RWKV7_SEED_RANDOM) {
        int local = 0;
        uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32) ^ (uint64_t)(uintptr_t)&local;
        do s->seed = splitmix64(&x) & 0xFFFFFFFFull; /* 32 bits, as llama.cpp prints them */
        while (s->seed == RWKV7_SEED_RANDOM);
    }
    rng_seed(s->rng, s->seed);
    *out = s;
    return RWKV7_OK;
}

uint64_t rwkv7_sampler_seed(const struct rwkv7_sampler *s) { return s->seed; }

void rwkv7_sampler_reset(struct rwkv7_sampler *s) {
    memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
    s->ring_head = s->ring_fill = 0;
    rng_seed(s->rng, s->seed);
}

void rwkv7_sampler_accept(struct rwkv7_sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab) return;
    float d = s->p.penalty_decay;
    if (d != 1.0f)
        for (int i = 0; i < s->n_vocab; i++) s->count[i] *= d;
    s->count[token] += 1.0f;
    int cap = s->p.repeat_last_n;
    if (cap > 0) {
        s->ring[s->ring_head] = token;
        s->ring_head = (s->ring_head + 1) % cap;
        if (s->ring_fill < cap) s->ring_fill++;
    }
}

/* ---- sampling ---- */

static void penalise(struct rwkv7_sampler *s, float *x) {
    float rp = s->p.repeat_penalty;
    if (rp != 1.0f && s->ring_fill > 0) {
        /* Once per distinct token in the window, as llama.cpp counts tokens first. */
        for (int j = 0; j < s->ring_fill; j++) {
            int32_t t = s->ring[j];
            if (s->mark[t]) continue;
            s->mark[t] = 1;
            x[t] = x[t] <= 0.0f ? x[t] * rp : x[t] / rp;
        }
        for (int j = 0; j < s->ring_fill; j++) s->mark[s->ring[j]] = 0;
    }
    float pres = s->p.presence_penalty, freq = s->p.frequency_penalty;
    if (pres != 0.0f || freq != 0.0f)
        for (int i = 0; i < s->n_vocab; i++)
            if (s->count[i] > 0.0f) x[i] -= pres + s->count[i] * freq;
}

void rwkv7_sampler_apply_penalties(const struct rwkv7_sampler *s, float *logits) {
    /* The mark scratch is restored to all-zero before returning, so the sampler is unchanged. */
    penalise((struct rwkv7_sampler *)s, logits);
}

/* Strict "ranks before": higher value, ties broken toward the lower id so results never depend
 * on the order in which candidates were visited. */
static inline int cand_better(const struct rwkv7_cand *a, const struct rwkv7_cand *b) {
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

/* Sift-down for a heap whose root is the best (max = 1) or the worst (max = 0) candidate. */
static void heap_down(struct rwkv7_cand *h, size_t n, size_t i, int max) {
    struct rwkv7_cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && (max ? cand_better(&h[c + 1], &h[c]) : cand_better(&h[c], &h[c + 1]))) c++;
        if (!(max ? cand_better(&h[c], &x) : cand_better(&x, &h[c]))) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Best k of x into c[0..k), best first: a min-heap of the k best so far, then heapsort. */
static void select_top_k(const float *x, int n, struct rwkv7_cand *c, int k) {
    for (int i = 0; i < k; i++) c[i] = (struct rwkv7_cand){x[i], i};
    for (size_t i = (size_t)k / 2; i-- > 0;) heap_down(c, (size_t)k, i, 0);
    for (int i = k; i < n; i++) {
        struct rwkv7_cand y = {x[i], i};
        if (cand_better(&y, &c[0])) {
            c[0] = y;
            heap_down(c, (size_t)k, 0, 0);
        }
    }
    for (size_t end = (size_t)k; end-- > 1;) {
        struct rwkv7_cand t = c[0];
        c[0] = c[end];
        c[end] = t;
        heap_down(c, end, 0, 0);
    }
}

/* Bucket of an unnormalised probability in [0, 1]: the top bits of a positive float order like
 * its value, so equal values share a bucket and a better bucket holds only better candidates. */
#define RWKV7_NUCLEUS_BUCKETS 1024
static inline uint32_t prob_bucket(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b >> 20; /* 8 exponent + 3 mantissa bits: 1.0f gives 0x3F8 < 1024 */
}

/* Top-p over unsorted candidates: moves the best-first prefix whose mass reaches target to
 * c[0..k) and returns k. A histogram finds the bucket where the mass is crossed; everything
 * above it is kept whole and only that bucket is ordered, by popping from a max-heap, so a wide
 * nucleus over a flat distribution costs O(V) rather than a full sort. */
static size_t nucleus_unsorted(struct rwkv7_cand *c, size_t n, double target) {
    double mass[RWKV7_NUCLEUS_BUCKETS] = {0};
    for (size_t i = 0; i < n; i++) mass[prob_bucket(c[i].v)] += c[i].v;
    double cum = 0.0;
    uint32_t cut = RWKV7_NUCLEUS_BUCKETS;
    while (cut-- > 0) {
        if (cum + mass[cut] >= target) break;
        cum += mass[cut];
    }
    if (cut >= RWKV7_NUCLEUS_BUCKETS) return n; /* min-p already removed the rest of the mass */
    size_t a = 0;
    for (size_t i = 0; i < n; i++)
        if (prob_bucket(c[i].v) > cut) {
            struct rwkv7_cand t = c[a];
            c[a++] = c[i];
            c[i] = t;
        }
    size_t g = a;
    for (size_t i = a; i < n; i++)
        if (prob_bucket(c[i].v) == cut) {
            struct rwkv7_cand t = c[g];
            c[g++] = c[i];
            c[i] = t;
        }
    struct rwkv7_cand *h = c + a;
    size_t end = g - a;
    for (size_t i = end / 2; i-- > 0;) heap_down(h, end, i, 1);
    while (end > 0) {
        struct rwkv7_cand t = h[0];
        h[0] = h[end - 1];
        h[end - 1] = t;
        end--;
        heap_down(h, end, 0, 1);
        cum += h[end].v;
        if (cum >= target) break;
    }
    size_t popped = (g - a) - end;
    memmove(h, h + end, popped * sizeof *h);
    return a + popped;
}

int32_t rwkv7_sampler_sample(struct rwkv7_sampler *s, const float *logits) {
    int V = s->n_vocab;
    float *x = s->logit;
    for (int i = 0; i < V; i++) x[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    penalise(s, x);
    const struct rwkv7_sampler_params *p = &s->p;
    if (p->temperature <= 0.0f) return argmax(x, V);

    struct rwkv7_cand *c = s->cand;
    size_t n;
    int sorted = 0;
    if (p->top_k > 0 && p->top_k < V) {
        select_top_k(x, V, c, p->top_k);
        n = (size_t)p->top_k;
        sorted = 1;
    } else {
        for (int i = 0; i < V; i++) c[i] = (struct rwkv7_cand){x[i], i};
        n = (size_t)V;
    }
    float m = sorted ? c[0].v : x[argmax(x, V)];
    if (!(m > -INFINITY)) return argmax(x, V); /* nothing is possible: fall back to id order */

    /* Subtracting the max before dividing keeps tiny temperatures from overflowing to inf. */
    double inv_t = 1.0 / (double)p->temperature, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        c[i].v = (float)exp(((double)c[i].v - m) * inv_t);
        sum += c[i].v;
    }
    /* min-p keeps p >= min_p * p_max (p_max is exp(0) = 1 here); top-p and min-p both keep a
     * best-first prefix, so filtering min-p first gives the same set as top-p then min-p. */
    if (p->min_p > 0.0f) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (c[i].v >= p->min_p) c[w++] = c[i];
        n = w;
    }
    size_t hi = n; /* the draw uses c[0..hi) */
    if (p->top_p < 1.0f) {
        double target = (double)p->top_p * sum, cum = 0.0;
        if (sorted) {
            size_t i = 0;
            while (i < n) {
                cum += c[i++].v;
                if (cum >= target) break;
            }
            hi = i;
        } else {
            hi = nucleus_unsorted(c, n, target);
        }
    }
    double kept = 0.0;
    for (size_t i = 0; i < hi; i++) kept += c[i].v;
    double u = rng_uniform(s->rng) * kept, acc = 0.0;
    for (size_t i = 0; i < hi; i++) {
        acc += c[i].v;
        if (u < acc) return c[i].id;
    }
    return c[hi - 1].id; /* rounding left u at the very top */
}

/* ---- state ---- */

#define RWKV7_SAMPLER_MAGIC 0x37535752u /* "RWS7" */
#define RWKV7_SAMPLER_VERSION 1u

struct rwkv7_sampler_state_hdr {
    uint32_t magic, version, n_vocab, ring_cap;
    uint64_t rng[4];
    uint32_t ring_head, ring_fill;
};

size_t rwkv7_sampler_state_size(const struct rwkv7_sampler *s) {
    return sizeof(struct rwkv7_sampler_state_hdr) + (size_t)s->n_vocab * sizeof(float) +
           (size_t)s->p.repeat_last_n * sizeof(int32_t);
}

void rwkv7_sampler_state_get(const struct rwkv7_sampler *s, void *dst) {
    struct rwkv7_sampler_state_hdr h = {RWKV7_SAMPLER_MAGIC, RWKV7_SAMPLER_VERSION,
                                        (uint32_t)s->n_vocab, (uint32_t)s->p.repeat_last_n,
                                        {s->rng[0], s->rng[1], s->rng[2], s->rng[3]},
                                        (uint32_t)s->ring_head, (uint32_t)s->ring_fill};
    unsigned char *o = dst;
    memcpy(o, &h, sizeof h);
    o += sizeof h;
    memcpy(o, s->count, (size_t)s->n_vocab * sizeof(float));
    o += (size_t)s->n_vocab * sizeof(float);
    memcpy(o, s->ring, (size_t)s->p.repeat_last_n * sizeof(int32_t));
}

enum rwkv7_status rwkv7_sampler_state_set(struct rwkv7_sampler *s, const void *src, size_t n) {
    size_t want = rwkv7_sampler_state_size(s);
    if (n != want)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "sampler: state of %zu bytes, expected %zu", n, want);
    struct rwkv7_sampler_state_hdr h;
    const unsigned char *in = src;
    memcpy(&h, in, sizeof h);
    if (h.magic != RWKV7_SAMPLER_MAGIC || h.version != RWKV7_SAMPLER_VERSION)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "sampler: state has magic 0x%08x version %u",
                          (unsigned)h.magic, (unsigned)h.version);
    if (h.n_vocab != (uint32_t)s->n_vocab || h.ring_cap != (uint32_t)s->p.repeat_last_n)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "sampler: state is for n_vocab %u repeat_last_n %u, sampler has %d %d",
                          (unsigned)h.n_vocab, (unsigned)h.ring_cap, s->n_vocab,
                          s->p.repeat_last_n);
    int cap = s->p.repeat_last_n;
    if (h.ring_fill > (uint32_t)cap || (cap > 0 && h.ring_head >= (uint32_t)cap) ||
        (cap == 0 && h.ring_head != 0) || !(h.rng[0] | h.rng[1] | h.rng[2] | h.rng[3]))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "sampler: state has ring head %u fill %u for %d",
                          (unsigned)h.ring_head, (unsigned)h.ring_fill, cap);
    const unsigned char *counts = in + sizeof h, *ring = counts + (size_t)s->n_vocab * sizeof(float);
    for (int i = 0; i < s->n_vocab; i++) {
        float v;
        memcpy(&v, counts + (size_t)i * sizeof v, sizeof v);
        if (!(v >= 0.0f) || isinf(v))
            return rwkv7_fail(RWKV7_ERR_FORMAT, "sampler: state count of token %d is %g", i,
                              (double)v);
    }
    for (uint32_t j = 0; j < h.ring_fill; j++) {
        int32_t t;
        memcpy(&t, ring + (size_t)j * sizeof t, sizeof t);
        if (t < 0 || t >= s->n_vocab)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "sampler: state window holds token %d", (int)t);
    }
    memcpy(s->rng, h.rng, sizeof s->rng);
    s->ring_head = (int)h.ring_head;
    s->ring_fill = (int)h.ring_fill;
    memcpy(s->count, counts, (size_t)s->n_vocab * sizeof(float));
    memcpy(s->ring, ring, (size_t)cap * sizeof(int32_t));
    return RWKV7_OK;
}

/* ---- stop strings ---- */

struct rwkv7_stop {
    int n_stops;
    char **stops;     /* (n_stops) NUL-terminated copies */
    size_t *lens;     /* (n_stops) */
    size_t max_len;   /* longest stop string */
    char *buf;        /* held tail, then the new text of the current feed */
    size_t len, cap;  /* bytes in buf, allocation */
    size_t held;      /* trailing bytes of buf held back after the last feed */
    int matched;      /* index of the stop string that completed, or -1 */
};

void rwkv7_stop_free(struct rwkv7_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n_stops; i++) free(s->stops[i]);
    free(s->stops);
    free(s->lens);
    free(s->buf);
    free(s);
}

enum rwkv7_status rwkv7_stop_init(const char *const *stops, int n_stops, struct rwkv7_stop **out) {
    *out = NULL;
    if (n_stops < 0 || (n_stops > 0 && !stops))
        return rwkv7_fail(RWKV7_ERR_ARG, "stop: %d stop strings", n_stops);
    for (int i = 0; i < n_stops; i++)
        if (!stops[i] || !stops[i][0])
            return rwkv7_fail(RWKV7_ERR_ARG, "stop: stop string %d is empty", i);
    struct rwkv7_stop *s = calloc(1, sizeof *s);
    if (!s) return rwkv7_fail(RWKV7_ERR_OOM, "stop: out of memory");
    s->matched = -1;
    s->stops = calloc((size_t)(n_stops ? n_stops : 1), sizeof *s->stops);
    s->lens = calloc((size_t)(n_stops ? n_stops : 1), sizeof *s->lens);
    if (!s->stops || !s->lens) goto oom;
    for (int i = 0; i < n_stops; i++) {
        size_t n = strlen(stops[i]);
        s->stops[i] = malloc(n + 1);
        s->n_stops = i + 1; /* so free() releases what exists so far */
        if (!s->stops[i]) goto oom;
        memcpy(s->stops[i], stops[i], n + 1);
        s->lens[i] = n;
        if (n > s->max_len) s->max_len = n;
    }
    *out = s;
    return RWKV7_OK;
oom:
    rwkv7_stop_free(s);
    return rwkv7_fail(RWKV7_ERR_OOM, "stop: out of memory for %d stop strings", n_stops);
}

void rwkv7_stop_reset(struct rwkv7_stop *s) {
    s->len = s->held = 0;
    s->matched = -1;
}

size_t rwkv7_stop_held(const struct rwkv7_stop *s) { return s->matched >= 0 ? 0 : s->held; }

const char *rwkv7_stop_held_bytes(const struct rwkv7_stop *s) { return s->buf ? s->buf + (s->len - s->held) : ""; }

enum rwkv7_status rwkv7_stop_feed(struct rwkv7_stop *s, const char *text, size_t n, int *matched,
                                  const char **emit, size_t *n_emit) {
    *emit = s->buf;
    *n_emit = 0;
    *matched = s->matched;
    if (s->matched >= 0) return RWKV7_OK;
    /* Keep only the held tail: everything before it was released by the previous call. */
    if (s->held) memmove(s->buf, s->buf + (s->len - s->held), s->held);
    size_t old = s->len = s->held;
    if (old + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < old + n) cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) return rwkv7_fail(RWKV7_ERR_OOM, "stop: out of memory for %zu bytes", old + n);
        s->buf = b;
        s->cap = cap;
    }
    if (n) memcpy(s->buf + old, text, n);
    s->len = old + n;
    *emit = s->buf;
    /* A stop string that ends in the new bytes starts inside buf: had it started earlier, its
     * beginning would have been part of the held tail. */
    for (size_t end = old + 1; end <= s->len; end++) {
        int best = -1;
        for (int j = 0; j < s->n_stops; j++) {
            size_t l = s->lens[j];
            if (l > end || memcmp(s->buf + end - l, s->stops[j], l) != 0) continue;
            if (best < 0 || l > s->lens[best]) best = j;
        }
        if (best >= 0) {
            s->matched = best;
            *matched = best;
            *n_emit = end - s->lens[best];
            s->held = 0;
            return RWKV7_OK;
        }
    }
    size_t h = s->max_len ? s->max_len - 1 : 0;
    if (h > s->len) h = s->len;
    for (; h > 0; h--) {
        const char *tail = s->buf + s->len - h;
        int prefix = 0;
        for (int j = 0; j < s->n_stops && !prefix; j++)
            prefix = s->lens[j] > h && memcmp(tail, s->stops[j], h) == 0;
        if (prefix) break;
    }
    s->held = h;
    *n_emit = s->len - h;
    return RWKV7_OK;
}

void rwkv7_stop_flush(struct rwkv7_stop *s, const char **emit, size_t *n_emit) {
    *emit = s->buf;
    *n_emit = 0;
    if (s->matched >= 0 || !s->held) return;
    *emit = s->buf + (s->len - s->held);
    *n_emit = s->held;
    s->len = s->held = 0;
}
