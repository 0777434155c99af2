/* cmd_bench.c: `rwkv7 bench`, llama-bench for RWKV-7: prefill (ppN), decode (tgN, optionally B
 * sequences at once) and both (ppN+tgM) over GGUF files or synthetic models of the released
 * geometries, on one or more backends. Each test: one warm-up, then -r timed repetitions from a
 * zero state; t/s = mean +- sample std. dev. of the per-repetition rates (ecosystem.md 2.3).
 * Every model first evaluates a fixed input; non-finite logits fail the run (exit 1), and the
 * logits' hash is reported, so a fast but broken kernel cannot post a number unnoticed. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "bench_out.h"
#include "bench_synth.h"
#include "check_tensors.h"
#include "commands.h"
#include "gguf.h"
#include "status.h"

/* The commit the binary was built from (generated at build time: tools/git_commit.cmake). */
extern const char rwkv7_git_commit[];
#define RWKV7_GIT_COMMIT rwkv7_git_commit

/* CPU defaults: the shape of the CPU anchor in performance.md's appendix (llama.cpp, prefill 128,
 * decode 32, mean of 3), so the no-argument run compares with it directly and takes ~10 s on a
 * 2-core machine. */
#define CPU_SMALL_P 128
#define CPU_SMALL_N 32
#define CPU_SMALL_R 3

struct int_list {
    int *v;
    int n;
};

/* Splits comma lists from repeated flags into one list of items (pointers into a copy). */
static bool split_items(const struct str_list *in, char **buf, const char ***items, int *n) {
    size_t total = 0;
    int count = 0;
    for (int i = 0; i < in->n; i++) {
        total += strlen(in->items[i]) + 1;
        for (const char *p = in->items[i]; *p; p++) count += *p == ',';
        count++;
    }
    *buf = malloc(total ? total : 1);
    *items = malloc((size_t)(count ? count : 1) * sizeof **items);
    *n = 0;
    if (!*buf || !*items) return false;
    char *o = *buf;
    for (int i = 0; i < in->n; i++) {
        strcpy(o, in->items[i]);
        for (char *tok = o, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = 0;
            if (*tok) (*items)[(*n)++] = tok;
        }
        o += strlen(in->items[i]) + 1;
    }
    return true;
}

static int parse_ints(const char *flag, const struct str_list *in, int min, struct int_list *out) {
    char *buf;
    const char **items;
    int n;
    if (!split_items(in, &buf, &items, &n)) {
        free(buf);
        free(items);
        return 1;
    }
    out->v = malloc((size_t)(n ? n : 1) * sizeof(int));
    out->n = 0;
    int rc = out->v ? 0 : 1;
    for (int i = 0; i < n && !rc; i++) {
        char *end;
        errno = 0;
        long x = strtol(items[i], &end, 10);
        if (*end || errno || x < min || x > 1 << 24) {
            host_errorf("rwkv7 bench: option '%s' needs integers >= %d, got '%s'\n", flag, min, items[i]);
            rc = 2;
        } else {
            out->v[out->n++] = (int)x;
        }
    }
    free(buf);
    free(items);
    return rc;
}

/* "CPU", "CUDA", "Vulkan": the registry's device prefix. */
static const char *backend_label(const char *name) {
    const struct rwkv7_backend_reg *r = rwkv7_backend_reg_find(name);
    return r ? r->device_prefix : name;
}

static void cpu_model_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            c++;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, cap, "%s", c);
            break;
        }
    }
    fclose(f);
}

/* ---- CPU copy bandwidth: the CPU backend has no copy_bandwidth entry, so time a threaded memcpy
 * of buffers far larger than any cache; read + write bytes per second, like the GPU entries. */

struct copy_job {
    char *dst;
    const char *src;
    size_t n;
};

static void *copy_worker(void *arg) {
    struct copy_job *j = arg;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

static double cpu_copy_bandwidth(int n_threads) {
    const size_t size = (size_t)256 << 20;
    char *a = malloc(size), *b = malloc(size);
    double best = 0;
    if (!a || !b) goto done;
    memset(a, 1, size);
    memset(b, 2, size);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        struct copy_job jobs[64];
        size_t part = size / (size_t)n_threads;
        double t0 = now_ms();
        int started = 0;
        for (int i = 0; i < n_threads; i++) {
            jobs[i].dst = b + (size_t)i * part;
            jobs[i].src = a + (size_t)i * part;
            jobs[i].n = i == n_threads - 1 ? size - (size_t)i * part : part;
            if (i == 0 || pthread_create(&th[started], NULL, copy_worker, &jobs[i]) != 0) continue;
            started++;
        }
        copy_worker(&jobs[0]);
        /* A thread that failed to start leaves its slice uncopied: copy it here. */
        for (int i = 1 + started; i < n_threads; i++) copy_worker(&jobs[i]);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        double ms = now_ms() - t0;
        double gbs = ms > 0 ? 2.0 * (double)size / (ms * 1e6) : 0;
        if (gbs > best) best = gbs;
    }
done:
    free(a);
    free(b);
    return best;
}

/* ---- one backend (name resolved from "auto") with its measured copy bandwidth per thread count */

struct bench_backend {
    char name[16];  /* "cpu", "vulkan", "cuda" */
    char desc[256];
    double *copy_gb_s; /* per entry of the thread list (GPU: same value everywhere) */
};

/* ---- model sources ---- */

struct source {
    const char *path;                   /* file, or NULL for synthetic */
    const struct bench_geometry *geom;  /* synthetic */
    const struct bench_ftype *ftype;    /* synthetic */
};

static const char *size_label(const struct rwkv7_hparams *hp, uint64_t n_params, char *buf, size_t cap) {
    static const struct { int l, c; const char *label; } known[] = {
        {12, 768, "0.1B"}, {24, 1024, "0.4B"}, {24, 2048, "1.5B"}, {32, 2560, "2.9B"}, {32, 4096, "7.2B"}, {61, 4096, "13.3B"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (hp->n_layer == known[i].l && hp->n_embd == known[i].c) return known[i].label;
    if (n_params >= 1000000000ull) snprintf(buf, cap, "%.1fB", n_params / 1e9);
    else if (n_params >= 1000000ull) snprintf(buf, cap, "%.0fM", n_params / 1e6);
    else snprintf(buf, cap, "%.0fK", n_params / 1e3);
    return buf;
}

/* "F16", "Q4_K_M" from general.file_type; "?" when the file does not say. */
static const char *file_ftype(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    struct rwkv7_gguf *g = NULL;
    if (rwkv7_gguf_open(path, &g) != RWKV7_OK) return buf;
    uint32_t id;
    if (rwkv7_gguf_find_kv(g, "general.file_type") >= 0 && rwkv7_gguf_get_u32(g, "general.file_type", &id) == RWKV7_OK) {
        const char *names[] = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M",
                               "Q4_K_S", "Q4_1", "Q4_0", "IQ4_NL", "IQ4_XS", "Q3_K_M", "Q3_K_L", "Q3_K_S", "IQ3_S",
                               "IQ3_M", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_XS", "IQ2_S", "IQ2_XXS",
                               "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0", "Q2_0", "Q1_0"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            const struct bench_ftype *ft = bench_ftype_find(names[i]);
            if (ft && (uint32_t)ft->id == id) {
                snprintf(buf, cap, "%s", ft->name);
                break;
            }
        }
    }
    rwkv7_gguf_free(g);
    return buf;
}

/* Multiply-adds per token in the layers (every 2-D weight but the embedding table and the head;
 * layer 0's v-LoRA is never run) and in the head, from the hyper-parameters. */
static void matmul_params(const struct rwkv7_hparams *hp, double *layers, double *head) {
    double C = hp->n_embd, F = hp->n_ff;
    double per = 4 * C * C + 2 * C * F + 2 * C * (hp->lora_decay + hp->lora_iclr + hp->lora_gate);
    *layers = hp->n_layer * per + (hp->n_layer - 1) * 2 * C * hp->lora_vres;
    *head = C * hp->n_vocab;
}

/* ---- running tests ---- */

struct runner {
    struct rwkv7_ctx *ctx;
    int n_vocab;
    int32_t *tokens; /* B * max(n_prompt, n_gen) */
    float *logits;   /* B * V */
    int *slots;
    uint64_t rng;
};

static uint32_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 32);
}

/* One timed run from a zero state: a B x n_prompt prefill, then n_gen single-token steps of B
 * sequences; random tokens drawn before the clock starts (llama-bench: no sampling, no
 * tokenization). Returns the elapsed ns, or a negative value on failure. */
static double run_once(struct runner *r, int n_prompt, int n_gen, int B, enum rwkv7_status *st) {
    int n_tok = n_prompt > n_gen ? n_prompt : n_gen;
    for (int i = 0; i < B * n_tok; i++) r->tokens[i] = (int32_t)(next_rand(&r->rng) % (uint32_t)r->n_vocab);
    for (int s = 0; s < B; s++)
        if ((*st = rwkv7_state_reset(r->ctx, s)) != RWKV7_OK) return -1;
    double t0 = now_ms();
    if (n_prompt > 0 && (*st = rwkv7_ctx_eval(r->ctx, B, r->slots, n_prompt, r->tokens, RWKV7_LOGITS_LAST, r->logits)) != RWKV7_OK)
        return -1;
    int32_t step[4096];
    for (int g = 0; g < n_gen; g++) {
        for (int s = 0; s < B; s++) step[s] = r->tokens[s * n_tok + g];
        if ((*st = rwkv7_ctx_eval(r->ctx, B, r->slots, 1, step, RWKV7_LOGITS_LAST, r->logits)) != RWKV7_OK) return -1;
        /* the check every command runs on the logits it receives, so tg measures what users get */
        int64_t bad = rwkv7_logits_first_nonfinite(r->logits, (size_t)B * (size_t)r->n_vocab);
        if (bad >= 0) {
            *st = rwkv7_fail(RWKV7_ERR_INTERNAL, "non-finite logits at decode step %d (logit %lld)", g, (long long)bad);
            return -1;
        }
    }
    return (now_ms() - t0) * 1e6;
}

/* Fixed input from a zero state; returns false on non-finite logits. */
static bool logits_check(struct runner *r, uint64_t *hash, enum rwkv7_status *st) {
    int32_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = (int32_t)((i * 7919 + 1) % r->n_vocab);
    int slot = 0;
    *hash = 0;
    if ((*st = rwkv7_state_reset(r->ctx, 0)) != RWKV7_OK) return true;
    if ((*st = rwkv7_ctx_eval(r->ctx, 1, &slot, 8, ids, RWKV7_LOGITS_LAST, r->logits)) != RWKV7_OK) return true;
    uint64_t h = 0xcbf29ce484222325ull;
    bool finite = true;
    for (int i = 0; i < r->n_vocab; i++) {
        finite &= isfinite(r->logits[i]) != 0;
        uint32_t bits;
        memcpy(&bits, &r->logits[i], 4);
        for (int b = 0; b < 4; b++) {
            h ^= (bits >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    *hash = h;
    return finite;
}

struct plan {
    struct int_list p, n, b, t;
    int *pg; /* pairs: pg[2i] prompt, pg[2i+1] gen */
    int n_pg, reps;
    bool warmup;
    bool invariant; /* rwkv7_model_set_batch_invariant, as rwkv7 batch uses it */
    enum bench_format fmt;
};

struct results {
    struct bench_record *v;
    int n, cap;
};

static void now_iso(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Runs one test and appends its record; returns an exit code. */
static int run_test(struct runner *r, const struct plan *pl, const struct bench_record *proto, int n_prompt,
                    int n_gen, int B, double copy_gb_s, struct rwkv7_model *m, struct results *res, const char *what) {
    struct bench_record rec = *proto;
    rec.n_prompt = n_prompt;
    rec.n_gen = n_gen;
    rec.n_seqs = B;
    rec.n_reps = pl->reps;
    char x[16] = "";
    if (B > 1) snprintf(x, sizeof x, " x%d", B);
    if (n_prompt && n_gen) snprintf(rec.test, sizeof rec.test, "pp%d+tg%d%s", n_prompt, n_gen, x);
    else if (n_prompt) snprintf(rec.test, sizeof rec.test, "pp%d%s", n_prompt, x);
    else snprintf(rec.test, sizeof rec.test, "tg%d%s", n_gen, x);
    now_iso(rec.test_time, sizeof rec.test_time);
    rec.samples_ns = calloc((size_t)pl->reps, sizeof(double));
    rec.samples_ts = calloc((size_t)pl->reps, sizeof(double));
    if (!rec.samples_ns || !rec.samples_ts) {
        bench_record_free(&rec);
        fprintf(stderr, "rwkv7 bench: out of memory\n");
        return 1;
    }
    enum rwkv7_status st = RWKV7_OK;
    if (pl->warmup) {
        fprintf(stderr, "rwkv7 bench: %s: %s warm-up\n", what, rec.test);
        /* llama-bench warms a prefill with the whole prompt and a decode with one token. */
        if (run_once(r, n_prompt, n_prompt ? 0 : 1, B, &st) < 0) goto fail;
    }
    uint64_t ops0 = rwkv7_model_n_ops(m);
    for (int i = 0; i < pl->reps; i++) {
        fprintf(stderr, "rwkv7 bench: %s: %s repetition %d/%d\n", what, rec.test, i + 1, pl->reps);
        double ns = run_once(r, n_prompt, n_gen, B, &st);
        if (ns < 0) goto fail;
        if (ns < 1) ns = 1;
        rec.samples_ns[i] = ns;
        rec.samples_ts[i] = (double)B * (n_prompt + n_gen) * 1e9 / ns;
    }
    bench_record_stats(&rec);
    if (n_gen && !n_prompt && rec.avg_ns > 0) {
        /* The cost of the non-finite logits check (included in the tg numbers): timed alone over
         * the same B x V logits, as a share of one decode step. */
        size_t nl = (size_t)B * (size_t)r->n_vocab;
        int reps = 200;
        volatile int64_t sink = 0;
        double c0 = now_ms();
        for (int i = 0; i < reps; i++) sink += rwkv7_logits_first_nonfinite(r->logits, nl);
        double us = (now_ms() - c0) * 1e3 / reps;
        double step_us = rec.avg_ns / 1e3 / n_gen;
        fprintf(stderr, "rwkv7 bench: %s: %s: non-finite logits check %.2f us per step of %zu logits = %.3f%% of a decode step\n",
                what, rec.test, us, nl, 100.0 * us / step_us);
        (void)sink;
    }
    rwkv7_model_set_batch_invariant(m, pl->invariant);
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    if (n_gen && !n_prompt) {
        /* Weights are read once per step for all B sequences; each sequence's fp32 state is read
         * and written once per token. */
        rec.bytes_per_token = (double)rwkv7_model_bytes_per_token(m) / B + 2.0 * (double)rec.state_bytes_per_seq;
        rec.gb_s = rec.bytes_per_token * rec.avg_ts / 1e9;
        rec.copy_gb_s = copy_gb_s;
        rec.bw_pct = copy_gb_s > 0 ? 100.0 * rec.gb_s / copy_gb_s : 0;
        /* Backend ops per decode step (a replayed step counts the ops it recorded). */
        rec.dispatches_per_token = (double)(rwkv7_model_n_ops(m) - ops0) / ((double)pl->reps * n_gen);
    }
    if (n_prompt && !n_gen) {
        double layers, head;
        matmul_params(hp, &layers, &head);
        /* 2 flops per multiply-add; the head runs for the last token of each sequence only. */
        double flops_per_token = 2.0 * (layers + head / n_prompt);
        rec.tflops = flops_per_token * rec.avg_ts / 1e12;
        rec.copy_gb_s = copy_gb_s;
    }
    if (res->n == res->cap) {
        int cap = res->cap ? 2 * res->cap : 16;
        struct bench_record *nv = realloc(res->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            bench_record_free(&rec);
            fprintf(stderr, "rwkv7 bench: out of memory\n");
            return 1;
        }
        res->v = nv;
        res->cap = cap;
    }
    res->v[res->n] = rec;
    bench_out_record(stdout, pl->fmt, &res->v[res->n], res->n);
    res->n++;
    return 0;
fail:
    bench_record_free(&rec);
    fprintf(stderr, "rwkv7 bench: %s: %s failed: %s\n", what, rec.test, rwkv7_last_error());
    return host_status_exit(st);
}

/* Loads one model image or file on one backend and thread count, checks its logits and runs
 * every test of the plan. */
static int bench_model(const struct source *src, const void *img, size_t img_size, const struct bench_backend *be,
                       int ti, const struct plan *pl, const char *cpu_info, struct results *res) {
    int threads = pl->t.v[ti];
    struct rwkv7_model_params mp = {be->name, NULL, threads, false, true};
    struct rwkv7_model *m = NULL;
    enum rwkv7_status st = src->path ? rwkv7_model_load(src->path, &mp, &m) : rwkv7_model_load_memory(img, img_size, &mp, &m);
    if (st != RWKV7_OK) {
        host_errorf("rwkv7 bench: cannot load '%s' on %s: %s\n", src->path ? src->path : "synthetic model", be->name,
                rwkv7_last_error());
        return host_status_exit(st);
    }
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    struct bench_record proto;
    memset(&proto, 0, sizeof proto);
    char lbuf[32], fbuf[32];
    if (src->path) {
        snprintf(proto.model_filename, sizeof proto.model_filename, "%s", src->path);
        snprintf(proto.model_type, sizeof proto.model_type, "rwkv7 %s %s",
                 size_label(hp, rwkv7_model_n_params(m), lbuf, sizeof lbuf), file_ftype(src->path, fbuf, sizeof fbuf));
    } else {
        snprintf(proto.model_filename, sizeof proto.model_filename, "synthetic:%s:%s", src->geom->name, src->ftype->name);
        snprintf(proto.model_type, sizeof proto.model_type, "rwkv7 %s %s", src->geom->name, src->ftype->name);
        proto.synthetic = true;
    }
    snprintf(proto.cpu_info, sizeof proto.cpu_info, "%s", cpu_info);
    if (strcmp(be->name, "cpu") != 0) snprintf(proto.gpu_info, sizeof proto.gpu_info, "%s", rwkv7_model_device_desc(m));
    snprintf(proto.backend, sizeof proto.backend, "%.15s", backend_label(be->name));
    snprintf(proto.device, sizeof proto.device, "%s", rwkv7_model_device_desc(m));
    proto.model_size = rwkv7_model_weight_bytes(m);
    proto.model_n_params = rwkv7_model_n_params(m);
    proto.state_bytes_per_seq = rwkv7_state_n_floats(hp) * sizeof(float);
    proto.n_threads = threads;

    int max_b = 1, max_tok = 8;
    for (int i = 0; i < pl->b.n; i++) max_b = pl->b.v[i] > max_b ? pl->b.v[i] : max_b;
    for (int i = 0; i < pl->p.n; i++) max_tok = pl->p.v[i] > max_tok ? pl->p.v[i] : max_tok;
    for (int i = 0; i < pl->n.n; i++) max_tok = pl->n.v[i] > max_tok ? pl->n.v[i] : max_tok;
    for (int i = 0; i < 2 * pl->n_pg; i++) max_tok = pl->pg[i] > max_tok ? pl->pg[i] : max_tok;
    struct runner r = {NULL, hp->n_vocab, NULL, NULL, NULL, 0x9e3779b97f4a7c15ull};
    int rc = 0;
    r.tokens = malloc((size_t)max_b * (size_t)max_tok * sizeof(int32_t));
    r.logits = malloc((size_t)max_b * (size_t)hp->n_vocab * sizeof(float));
    r.slots = malloc((size_t)max_b * sizeof(int));
    if (!r.tokens || !r.logits || !r.slots) {
        fprintf(stderr, "rwkv7 bench: out of memory\n");
        rc = 1;
        goto done;
    }
    for (int i = 0; i < max_b; i++) r.slots[i] = i;
    if ((st = rwkv7_ctx_init(m, max_b, &r.ctx)) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 bench: cannot create a context of %d slots: %s\n", max_b, rwkv7_last_error());
        rc = host_status_exit(st);
        goto done;
    }
    char what[200];
    snprintf(what, sizeof what, "%s on %s, %d thread%s", proto.model_type, proto.backend, threads, threads == 1 ? "" : "s");
    bool finite = logits_check(&r, &proto.logits_hash, &st);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 bench: %s: evaluation failed: %s\n", what, rwkv7_last_error());
        rc = host_status_exit(st);
        goto done;
    }
    if (!finite) {
        fprintf(stderr, "rwkv7 bench: %s: the logits of the check input are not finite (hash %016llx); not benchmarking a broken model\n",
                what, (unsigned long long)proto.logits_hash);
        rc = 1;
        goto done;
    }
    fprintf(stderr, "rwkv7 bench: %s: logits check ok (finite, hash %016llx)\n", what, (unsigned long long)proto.logits_hash);
    double bw = be->copy_gb_s[ti];
    for (int i = 0; i < pl->p.n && !rc; i++)
        if (pl->p.v[i] > 0) rc = run_test(&r, pl, &proto, pl->p.v[i], 0, 1, bw, m, res, what);
    for (int i = 0; i < pl->n.n && !rc; i++)
        for (int k = 0; k < pl->b.n && !rc; k++)
            if (pl->n.v[i] > 0) rc = run_test(&r, pl, &proto, 0, pl->n.v[i], pl->b.v[k], bw, m, res, what);
    for (int i = 0; i < pl->n_pg && !rc; i++)
        for (int k = 0; k < pl->b.n && !rc; k++)
            rc = run_test(&r, pl, &proto, pl->pg[2 * i], pl->pg[2 * i + 1], pl->b.v[k], bw, m, res, what);
done:
    rwkv7_ctx_free(r.ctx);
    free(r.tokens);
    free(r.logits);
    free(r.slots);
    rwkv7_model_free(m);
    return rc;
}

/* Starts each listed backend once: resolves "auto", prints the device banner and measures the
 * copy bandwidth (per thread count on the CPU). Duplicates after resolution are dropped. */
static int open_backends(const char **names, int n_names, const char *device, const struct int_list *threads,
                         const char *cpu_info, struct bench_backend *out, int *n_out) {
    *n_out = 0;
    for (int i = 0; i < n_names; i++) {
        struct rwkv7_backend *be = NULL;
        enum rwkv7_status st = rwkv7_backend_init(names[i], device, threads->v[0], false, &be);
        if (st != RWKV7_OK) {
            host_errorf("rwkv7 bench: backend '%s': %s\n", names[i], rwkv7_last_error());
            return host_status_exit(st);
        }
        bool dup = false;
        for (int k = 0; k < *n_out; k++) dup |= !strcmp(out[k].name, be->i->name);
        if (dup) {
            rwkv7_backend_free(be);
            continue;
        }
        struct bench_backend *b = &out[(*n_out)++];
        snprintf(b->name, sizeof b->name, "%s", be->i->name);
        snprintf(b->desc, sizeof b->desc, "%s", be->desc);
        b->copy_gb_s = calloc((size_t)threads->n, sizeof(double));
        if (!b->copy_gb_s) {
            rwkv7_backend_free(be);
            return 1;
        }
        bool cpu = !strcmp(b->name, "cpu");
        double gpu_bw = !cpu && be->i->copy_bandwidth ? be->i->copy_bandwidth(be) : 0;
        rwkv7_backend_free(be);
        for (int t = 0; t < threads->n; t++) {
            b->copy_gb_s[t] = cpu ? cpu_copy_bandwidth(threads->v[t]) : gpu_bw;
            if (cpu)
                fprintf(stderr, "rwkv7 bench: device: CPU (%s), %d thread%s; copy bandwidth %.1f GB/s (memcpy of 256 MiB, read + write)\n",
                        cpu_info, threads->v[t], threads->v[t] == 1 ? "" : "s", b->copy_gb_s[t]);
            if (!cpu && t == 0) {
                if (gpu_bw > 0) fprintf(stderr, "rwkv7 bench: device: %s; copy bandwidth %.1f GB/s (measured)\n", b->desc, gpu_bw);
                else fprintf(stderr, "rwkv7 bench: device: %s; copy bandwidth unknown\n", b->desc);
            }
            if (!cpu) break;
        }
        for (int t = 1; !cpu && t < threads->n; t++) b->copy_gb_s[t] = gpu_bw;
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--quality")) return bench_quality(argc, argv);
    struct str_list models = {0}, synth = {0}, types = {0}, p_s = {0}, n_s = {0}, pg_s = {0}, b_s = {0}, t_s = {0},
                    backends_s = {0};
    const char *device = NULL, *output = "md", *plot = NULL;
    int reps = -1;
    uint64_t seed = 1234;
    bool no_warmup = false, invariant = false;
    const struct opt opts[] = {
        {"-m,--model", OPT_LIST, &models, "FILE", "GGUF model (repeatable or comma list)"},
        {"--synthetic", OPT_LIST, &synth, "SIZES", "synthetic models of released geometries: 0.1B,0.4B,1.5B,2.9B,7.2B,13.3B (no file needed)"},
        {"--types", OPT_LIST, &types, "TYPES", "synthetic file types: f16,bf16,q8_0,q6_k,q5_k,q4_k,q4_0,iq4_nl,iq3_s,... or ftype names like Q4_K_M (default f16,q8_0,q4_k)"},
        {"-p,--n-prompt", OPT_LIST, &p_s, "N", "prefill test of N tokens, list; 0 = none (default 512; 64 on the CPU)"},
        {"-n,--n-gen", OPT_LIST, &n_s, "N", "decode test of N tokens, list; 0 = none (default 128; 16 on the CPU)"},
        {"-pg", OPT_LIST, &pg_s, "PP,TG", "prefill PP then decode TG in one timed run (repeatable)"},
        {"-b,--batch", OPT_LIST, &b_s, "B", "sequences decoding together, list, aggregate t/s (default 1)"},
        {"-r,--repetitions", OPT_INT, &reps, "N", "timed repetitions after the warm-up (default 5; 2 on the CPU)"},
        {"-t,--threads", OPT_LIST, &t_s, "N", "CPU threads, list (default: all physical cores)"},
        {"--backend", OPT_LIST, &backends_s, "NAME", "auto | cpu | vulkan | cuda, list (default auto = CUDA, then Vulkan, then CPU)"},
        {"-dev,--device", OPT_STR, &device, "DEV", "device name, e.g. Vulkan0 or CUDA0 (default: the backend's best)"},
        {"-o,--output", OPT_STR, &output, "FMT", "md | csv | json | jsonl on stdout (default md)"},
        {"--plot", OPT_STR, &plot, "FILE.svg", "also write a bar chart of prefill and decode t/s"},
        {"--seed", OPT_U64, &seed, "SEED", "seed of the synthetic weights (default 1234)"},
        {"--no-warmup", OPT_FLAG, &no_warmup, NULL, "skip the warm-up run of each test"},
        {"--batch-invariant", OPT_FLAG, &invariant, NULL, "run GPU matmuls in the batch-invariant mode rwkv7 batch uses (measures its cost)"},
        {"--quality", OPT_FLAG, &invariant, NULL, "speed and quality (PPL, KL divergence) per file type; see rwkv7 bench --quality --help"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    struct plan pl;
    memset(&pl, 0, sizeof pl);
    struct source *sources = NULL;
    struct bench_backend bes[8];
    int n_bes = 0, n_sources = 0;
    char *mbuf = NULL, *sbuf = NULL, *tbuf = NULL, *bkbuf = NULL, *pgbuf = NULL;
    const char **mitems = NULL, **sitems = NULL, **titems = NULL, **bkitems = NULL, **pgitems = NULL;
    int n_m = 0, n_syn = 0, n_types = 0, n_bk = 0, n_pgi = 0;
    struct results res = {NULL, 0, 0};
    memset(bes, 0, sizeof bes);
    int rc = args_parse("bench", "[-m FILE | --synthetic SIZES --types TYPES] [-p N] [-n N] [-pg PP,TG] [-b B] [-r N] [-o FMT]",
                        opts, argc, argv, 2);
    if (rc) {
        rc = rc == 1 ? 0 : rc;
        goto done;
    }
    if (!bench_format_parse(output, &pl.fmt)) {
        host_errorf("rwkv7 bench: unknown output format '%s' (md, csv, json or jsonl)\n", output);
        rc = 2;
        goto done;
    }
    if (!split_items(&models, &mbuf, &mitems, &n_m) || !split_items(&synth, &sbuf, &sitems, &n_syn) ||
        !split_items(&types, &tbuf, &titems, &n_types) || !split_items(&backends_s, &bkbuf, &bkitems, &n_bk) ||
        !split_items(&pg_s, &pgbuf, &pgitems, &n_pgi)) {
        rc = 1;
        goto done;
    }
    /* -pg values are pairs, so split_items' comma split gives PP, TG, PP, TG, ... */
    if (n_pgi % 2) {
        fprintf(stderr, "rwkv7 bench: -pg needs PP,TG pairs\n");
        rc = 2;
        goto done;
    }
    pl.n_pg = n_pgi / 2;
    pl.pg = malloc((size_t)(n_pgi ? n_pgi : 1) * sizeof(int));
    if (!pl.pg) { rc = 1; goto done; }
    for (int i = 0; i < n_pgi; i++) {
        char *end;
        long v = strtol(pgitems[i], &end, 10);
        if (*end || v < 1 || v > 1 << 24) {
            host_errorf("rwkv7 bench: -pg needs positive PP,TG pairs, got '%s'\n", pgitems[i]);
            rc = 2;
            goto done;
        }
        pl.pg[i] = (int)v;
    }
    if ((rc = parse_ints("-b", &b_s, 1, &pl.b)) || (rc = parse_ints("-t", &t_s, 1, &pl.t)) ||
        (rc = parse_ints("-p", &p_s, 0, &pl.p)) || (rc = parse_ints("-n", &n_s, 0, &pl.n)))
        goto done;
    if (reps != -1 && reps < 1) {
        fprintf(stderr, "rwkv7 bench: -r needs at least 1 repetition\n");
        rc = 2;
        goto done;
    }
    for (int i = 0; i < pl.b.n; i++)
        if (pl.b.v[i] > 4096) {
            fprintf(stderr, "rwkv7 bench: -b %d is above the limit of 4096 sequences\n", pl.b.v[i]);
            rc = 2;
            goto done;
        }
    if (pl.b.n == 0) pl.b.v[pl.b.n++] = 1;
    if (pl.t.n == 0) pl.t.v[pl.t.n++] = rwkv7_n_physical_cores();

    /* Model sources: files, then synthetic sizes x types; nothing given = 0.1B x default types. */
    static const char *const default_types[] = {"f16", "q8_0", "q4_k"};
    if (n_types == 0) {
        n_types = 3;
        free(titems);
        titems = malloc(sizeof default_types);
        if (!titems) { rc = 1; goto done; }
        memcpy(titems, default_types, sizeof default_types);
    }
    bool want_synth = n_syn > 0 || types.n > 0 || n_m == 0;
    int n_sizes = n_syn ? n_syn : 1;
    sources = calloc((size_t)(n_m + (want_synth ? n_sizes * n_types : 0)) + 1, sizeof *sources);
    if (!sources) { rc = 1; goto done; }
    for (int i = 0; i < n_m; i++) sources[n_sources++].path = mitems[i];
    for (int s = 0; want_synth && s < n_sizes; s++) {
        const char *size = n_syn ? sitems[s] : "0.1B";
        const struct bench_geometry *g = bench_geometry_find(size);
        if (!g) {
            host_errorf("rwkv7 bench: unknown synthetic size '%s' (0.1B, 0.4B, 1.5B, 2.9B, 7.2B or 13.3B)\n", size);
            rc = 2;
            goto done;
        }
        for (int k = 0; k < n_types; k++) {
            const struct bench_ftype *ft = bench_ftype_find(titems[k]);
            if (!ft) {
                host_errorf("rwkv7 bench: unknown type '%s' (a weight type like q4_k or a file type like Q4_K_M)\n", titems[k]);
                rc = 2;
                goto done;
            }
            sources[n_sources].geom = g;
            sources[n_sources++].ftype = ft;
        }
    }

    char cpu_info[128];
    cpu_model_name(cpu_info, sizeof cpu_info);
    static const char *const auto_name[] = {"auto"};
    if (n_bk > 8) {
        fprintf(stderr, "rwkv7 bench: at most 8 backends\n");
        rc = 2;
        goto done;
    }
    if ((rc = open_backends(n_bk ? bkitems : (const char **)auto_name, n_bk ? n_bk : 1, device, &pl.t, cpu_info, bes, &n_bes)))
        goto done;

    /* llama-bench's pp512/tg128/r5 are slow on a laptop CPU; when every chosen backend is the CPU,
     * the smaller defaults above keep the no-argument run well under a minute. */
    bool all_cpu = true;
    for (int i = 0; i < n_bes; i++) all_cpu &= !strcmp(bes[i].name, "cpu");
    bool small = all_cpu && (p_s.n == 0 || n_s.n == 0 || reps == -1);
    if (p_s.n == 0) pl.p.v[pl.p.n++] = all_cpu ? CPU_SMALL_P : 512;
    if (n_s.n == 0) pl.n.v[pl.n.n++] = all_cpu ? CPU_SMALL_N : 128;
    pl.reps = reps != -1 ? reps : all_cpu ? CPU_SMALL_R : 5;
    if (small)
        fprintf(stderr, "rwkv7 bench: CPU backend: using the smaller CPU defaults (-p %d -n %d -r %d where not given; llama-bench's are -p 512 -n 128 -r 5)\n",
                CPU_SMALL_P, CPU_SMALL_N, CPU_SMALL_R);
    pl.warmup = !no_warmup;
    pl.invariant = invariant;

    bench_out_begin(stdout, pl.fmt);
    for (int s = 0; s < n_sources && !rc; s++) {
        const struct source *src = &sources[s];
        void *img = NULL;
        size_t img_size = 0;
        if (!src->path) {
            double t0 = now_ms();
            fprintf(stderr, "rwkv7 bench: building synthetic %s %s ...\n", src->geom->name, src->ftype->name);
            enum rwkv7_status st = bench_synth_image(src->geom, src->ftype, seed, rwkv7_n_physical_cores(), &img, &img_size);
            if (st != RWKV7_OK) {
                fprintf(stderr, "rwkv7 bench: cannot build synthetic %s %s: %s\n", src->geom->name, src->ftype->name,
                        rwkv7_last_error());
                rc = host_status_exit(st);
                break;
            }
            fprintf(stderr, "rwkv7 bench: built synthetic %s %s: %.1f MiB in %.1f s\n", src->geom->name, src->ftype->name,
                    img_size / 1048576.0, (now_ms() - t0) / 1e3);
        }
        for (int b = 0; b < n_bes && !rc; b++) {
            bool cpu = !strcmp(bes[b].name, "cpu");
            for (int t = 0; t < (cpu ? pl.t.n : 1) && !rc; t++) rc = bench_model(src, img, img_size, &bes[b], t, &pl, cpu_info, &res);
        }
        free(img);
    }
    bench_out_end(stdout, pl.fmt, res.v, res.n);
    if (pl.fmt == BENCH_MD) {
        printf("\n");
        for (int b = 0; b < n_bes; b++) {
            bool cpu = !strcmp(bes[b].name, "cpu");
            for (int t = 0; t < (cpu ? pl.t.n : 1); t++) {
                if (cpu) printf("device: CPU (%s), %d thread%s, copy bandwidth %.1f GB/s (memcpy)\n", cpu_info, pl.t.v[t],
                                pl.t.v[t] == 1 ? "" : "s", bes[b].copy_gb_s[t]);
                else printf("device: %s, copy bandwidth %.1f GB/s\n", bes[b].desc, bes[b].copy_gb_s[t]);
            }
        }
        printf("build: %s\n", RWKV7_GIT_COMMIT);
    }
    fflush(stdout);
    if (plot && res.n > 0) {
        if (!bench_svg_write(plot, res.v, res.n)) {
            host_errorf("rwkv7 bench: cannot write '%s': %s\n", plot, strerror(errno));
            if (!rc) rc = 1;
        } else {
            fprintf(stderr, "rwkv7 bench: wrote %s\n", plot);
        }
    }

done:
    for (int i = 0; i < res.n; i++) bench_record_free(&res.v[i]);
    free(res.v);
    for (int i = 0; i < n_bes; i++) free(bes[i].copy_gb_s);
    free(sources);
    free(pl.p.v);
    free(pl.n.v);
    free(pl.b.v);
    free(pl.t.v);
    free(pl.pg);
    free(mbuf);
    free(sbuf);
    free(tbuf);
    free(bkbuf);
    free(pgbuf);
    free(mitems);
    free(sitems);
    free(titems);
    free(bkitems);
    free(pgitems);
    str_list_free(&models);
    str_list_free(&synth);
    str_list_free(&types);
    str_list_free(&p_s);
    str_list_free(&n_s);
    str_list_free(&pg_s);
    str_list_free(&b_s);
    str_list_free(&t_s);
    str_list_free(&backends_s);
    return rc;
}
