/* test_state.c: state files and the prefix cache on the CPU backend with the trained tiny model:
 * save/load round trip (state and next logits bit-identical), refusals (another model, other
 * shapes, truncated at many lengths, not a state file) that leave the slot untouched, initial
 * states without hash or token shifts, prefix-cache hits equal to a full prefill, LRU eviction,
 * and the CLI: generate N, save, resume M == generate N + M with the same seed. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "dtype.h"
#include "gguf_write.h"
#include "prefix_cache.h"
#include "sampler.h"
#include "state_file.h"
#include "testing.h"

static char g_tmp[256];

static struct rwkv7_model *load(const char *rel) {
    char p[600];
    test_fixture(p, sizeof p, rel);
    struct rwkv7_model_params mp = {"cpu", NULL, 1, false, true};
    struct rwkv7_model *m = NULL;
    CHECK(rwkv7_model_load(p, &mp, &m) == RWKV7_OK, "load %s: %s", rel, rwkv7_last_error());
    return m;
}

static size_t tokenize(struct rwkv7_model *m, const char *text, int32_t *ids, size_t cap) {
    size_t n = 0;
    CHECK(rwkv7_tokenize(rwkv7_model_tokenizer(m), text, strlen(text), ids, cap, &n) == RWKV7_OK,
          "tokenize: %s", rwkv7_last_error());
    return n;
}

static float *snapshot(struct rwkv7_model *m, struct rwkv7_ctx *ctx, int slot) {
    float *s = malloc(rwkv7_state_n_floats(rwkv7_model_hparams(m)) * sizeof(float));
    CHECK(s && rwkv7_state_get(ctx, slot, s) == RWKV7_OK, "state_get");
    return s;
}

static int same_state(struct rwkv7_model *m, struct rwkv7_ctx *ctx, int slot, const float *want) {
    float *s = snapshot(m, ctx, slot);
    int eq = s && memcmp(s, want, rwkv7_state_n_floats(rwkv7_model_hparams(m)) * sizeof(float)) == 0;
    free(s);
    return eq;
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_tmp, name); }

static void test_round_trip_and_refusals(struct rwkv7_model *m, struct rwkv7_model *m16,
                                         struct rwkv7_model *other) {
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    int V = hp->n_vocab;
    struct rwkv7_ctx *ctx = NULL;
    CHECK(rwkv7_ctx_init(m, 2, &ctx) == RWKV7_OK, "ctx");
    if (!ctx) return;
    int32_t ids[64];
    size_t n = tokenize(m, "The little dog ran to the", ids, 64);
    float *logits = malloc((size_t)V * sizeof(float)), *l1 = malloc((size_t)V * sizeof(float)),
          *l2 = malloc((size_t)V * sizeof(float));
    int s0 = 0, s1 = 1;
    CHECK(rwkv7_ctx_eval(ctx, 1, &s0, (int)n, ids, RWKV7_LOGITS_LAST, logits) == RWKV7_OK, "prefill");
    float *saved = snapshot(m, ctx, 0);

    struct rwkv7_sampler_params sp;
    rwkv7_sampler_params_default(&sp);
    sp.seed = 7;
    struct rwkv7_sampler *smp = NULL;
    CHECK(rwkv7_sampler_init(&sp, V, &smp) == RWKV7_OK, "sampler");
    for (size_t i = 0; i < n; i++) rwkv7_sampler_accept(smp, ids[i]);
    size_t blob_n = rwkv7_sampler_state_size(smp);
    void *blob = malloc(blob_n);
    rwkv7_sampler_state_get(smp, blob);

    char path[400];
    path_of(path, sizeof path, "rt.gguf");
    struct rwkv7_state_extra x = {(uint64_t)n, 32, logits, blob, blob_n, "round trip", false, 0};
    CHECK(rwkv7_state_save_file(m, ctx, 0, &x, path) == RWKV7_OK, "save: %s", rwkv7_last_error());

    int32_t next = ' ';
    CHECK(rwkv7_ctx_eval(ctx, 1, &s0, 1, &next, RWKV7_LOGITS_LAST, l1) == RWKV7_OK, "eval");
    struct rwkv7_state_extra y;
    CHECK(rwkv7_state_load_file(m, ctx, 1, path, &y) == RWKV7_OK, "load: %s", rwkv7_last_error());
    CHECK(same_state(m, ctx, 1, saved), "loaded state differs from the saved one");
    CHECK(rwkv7_ctx_eval(ctx, 1, &s1, 1, &next, RWKV7_LOGITS_LAST, l2) == RWKV7_OK, "eval");
    CHECK(memcmp(l1, l2, (size_t)V * sizeof(float)) == 0, "logits after reload are not bit-identical");
    CHECK(y.n_tokens == n && y.pending_token == 32 && y.has_hash &&
          y.model_hash == rwkv7_model_hash(m), "extra: n_tokens %llu pending %d hash %d",
          (unsigned long long)y.n_tokens, (int)y.pending_token, (int)y.has_hash);
    CHECK(y.note && strcmp(y.note, "round trip") == 0, "note '%s'", y.note ? y.note : "(null)");
    CHECK(y.logits && memcmp(y.logits, logits, (size_t)V * sizeof(float)) == 0, "logits part");
    CHECK(y.sampler && y.sampler_size == blob_n && memcmp(y.sampler, blob, blob_n) == 0, "sampler part");
    CHECK(y.sampler && rwkv7_sampler_state_set(smp, y.sampler, y.sampler_size) == RWKV7_OK,
          "sampler state does not restore: %s", rwkv7_last_error());
    rwkv7_state_extra_free(&y);

    /* Refusals leave slot 1 exactly as it is. */
    float *before = snapshot(m, ctx, 1);
    struct rwkv7_ctx *c16 = NULL, *co = NULL;
    if (m16 && rwkv7_ctx_init(m16, 1, &c16) == RWKV7_OK) {
        enum rwkv7_status st = rwkv7_state_load_file(m16, c16, 0, path, NULL);
        CHECK(st == RWKV7_ERR_UNSUPPORTED && strstr(rwkv7_last_error(), "another model"),
              "F16 model accepted an F32 model's state: %s", rwkv7_last_error());
    }
    if (other && rwkv7_ctx_init(other, 1, &co) == RWKV7_OK) {
        enum rwkv7_status st = rwkv7_state_load_file(other, co, 0, path, NULL);
        CHECK(st == RWKV7_ERR_UNSUPPORTED && strstr(rwkv7_last_error(), "layers"),
              "model of other shapes accepted the state: %s", rwkv7_last_error());
    }
    size_t size = 0;
    unsigned char *bytes = test_read_file(path, &size);
    CHECK(bytes && size > 1000, "state file of %zu bytes", size);
    size_t cuts[] = {0, 3, 8, 24, 100, 300, size / 3, size / 2, size - 100, size - 33, size - 1};
    for (size_t i = 0; bytes && i < sizeof cuts / sizeof cuts[0]; i++) {
        char tp[400];
        path_of(tp, sizeof tp, "cut.gguf");
        FILE *f = fopen(tp, "wb");
        CHECK(f && fwrite(bytes, 1, cuts[i], f) == cuts[i], "write cut");
        if (f) fclose(f);
        struct rwkv7_state_extra z;
        enum rwkv7_status st = rwkv7_state_load_file(m, ctx, 1, tp, &z);
        CHECK(st == RWKV7_ERR_FORMAT, "file cut at %zu of %zu: status %d (%s)", cuts[i], size,
              (int)st, rwkv7_last_error());
        CHECK(z.logits == NULL && z.pending_token == -1, "refused load filled extra");
    }
    char missing[400];
    path_of(missing, sizeof missing, "does-not-exist.gguf");
    CHECK(rwkv7_state_load_file(m, ctx, 1, missing, NULL) == RWKV7_ERR_IO, "missing file");
    char model_path[600];
    test_fixture(model_path, sizeof model_path, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    CHECK(rwkv7_state_load_file(m, ctx, 1, model_path, NULL) == RWKV7_ERR_FORMAT &&
          strstr(rwkv7_last_error(), "not a state file"), "model accepted as state: %s", rwkv7_last_error());
    CHECK(rwkv7_state_load_file(m, ctx, 2, path, NULL) == RWKV7_ERR_ARG, "slot out of range");
    CHECK(same_state(m, ctx, 1, before), "a refused load changed the slot");

    free(bytes);
    free(before);
    rwkv7_ctx_free(c16);
    rwkv7_ctx_free(co);
    rwkv7_sampler_free(smp);
    free(blob);
    free(saved);
    free(logits);
    free(l1);
    free(l2);
    rwkv7_ctx_free(ctx);
}

/* What tools/convert_state.py writes: no hash, no token shifts, no sampler or pending token. */
static void write_initial(struct rwkv7_model *m, const char *path, int head_size, const float *wkv) {
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    struct rwkv7_gguf_writer *w = NULL;
    CHECK(rwkv7_gguf_writer_init(&w) == RWKV7_OK, "writer");
    if (!w) return;
    rwkv7_gguf_writer_add_str(w, "general.architecture", "rwkv7");
    rwkv7_gguf_writer_add_str(w, "general.type", "state");
    rwkv7_gguf_writer_add_u32(w, "rwkv7.state.version", 1);
    rwkv7_gguf_writer_add_u32(w, "rwkv7.block_count", (uint32_t)hp->n_layer);
    rwkv7_gguf_writer_add_u32(w, "rwkv7.embedding_length", (uint32_t)hp->n_embd);
    rwkv7_gguf_writer_add_u32(w, "rwkv7.wkv.head_size", (uint32_t)head_size);
    rwkv7_gguf_writer_add_str(w, "rwkv7.state.note", "converted");
    size_t per = (size_t)hp->n_head * hp->head_size * hp->head_size;
    for (int l = 0; l < hp->n_layer; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.state_wkv", l);
        int64_t ne[4] = {hp->head_size, hp->head_size, hp->n_head, 1};
        CHECK(rwkv7_gguf_writer_add_tensor(w, name, 3, ne, RWKV7_DTYPE_F32, wkv + l * per,
                                           per * sizeof(float)) == RWKV7_OK, "add %s", name);
    }
    CHECK(rwkv7_gguf_writer_write_file(w, path) == RWKV7_OK, "write: %s", rwkv7_last_error());
    rwkv7_gguf_writer_free(w);
}

static void test_initial_state(struct rwkv7_model *m) {
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    size_t per = (size_t)hp->n_head * hp->head_size * hp->head_size, nf = rwkv7_state_n_floats(hp);
    float *wkv = malloc(per * hp->n_layer * sizeof(float)), *want = calloc(nf, sizeof(float));
    struct test_rng r = {12345};
    for (size_t i = 0; i < per * hp->n_layer; i++) wkv[i] = test_rng_uniform(&r, -1, 1);
    for (int l = 0; l < hp->n_layer; l++)
        memcpy(want + l * (2 * (size_t)hp->n_embd + per) + 2 * hp->n_embd, wkv + l * per, per * sizeof(float));
    struct rwkv7_ctx *ctx = NULL;
    CHECK(rwkv7_ctx_init(m, 1, &ctx) == RWKV7_OK, "ctx");
    int32_t t = 'a';
    int s = 0;
    CHECK(rwkv7_ctx_eval(ctx, 1, &s, 1, &t, RWKV7_LOGITS_NONE, NULL) == RWKV7_OK, "dirty the slot");
    char path[400];
    path_of(path, sizeof path, "initial.gguf");
    write_initial(m, path, hp->head_size, wkv);
    struct rwkv7_state_extra x;
    CHECK(rwkv7_state_load_file(m, ctx, 0, path, &x) == RWKV7_OK, "initial state: %s", rwkv7_last_error());
    CHECK(!x.has_hash && x.pending_token == -1 && !x.logits && !x.sampler, "initial state extras");
    CHECK(same_state(m, ctx, 0, want), "initial state: zero shifts + the file's WKV expected");
    rwkv7_state_extra_free(&x);
    write_initial(m, path, hp->head_size * 2, wkv);
    CHECK(rwkv7_state_load_file(m, ctx, 0, path, NULL) == RWKV7_ERR_UNSUPPORTED,
          "initial state of another head size accepted: %s", rwkv7_last_error());
    rwkv7_ctx_free(ctx);
    free(wkv);
    free(want);
}

static void test_prefix_cache(struct rwkv7_model *m) {
    int V = rwkv7_model_hparams(m)->n_vocab;
    struct rwkv7_ctx *ctx = NULL;
    CHECK(rwkv7_ctx_init(m, 2, &ctx) == RWKV7_OK, "ctx");
    if (!ctx) return;
    int32_t ids[128];
    size_t n = tokenize(m, "System: You are a storyteller.\n\nUser: Tell me about a cat.", ids, 128);
    size_t p = 32; /* "System: You are a storyteller.\n\n" */
    float *la = malloc((size_t)V * sizeof(float)), *lb = malloc((size_t)V * sizeof(float)),
          *lc = malloc((size_t)V * sizeof(float));
    int s0 = 0, s1 = 1;
    /* The same split without the cache: must be bit-identical. */
    CHECK(rwkv7_ctx_eval(ctx, 1, &s0, (int)p, ids, RWKV7_LOGITS_NONE, NULL) == RWKV7_OK, "eval");
    CHECK(rwkv7_ctx_eval(ctx, 1, &s0, (int)(n - p), ids + p, RWKV7_LOGITS_LAST, la) == RWKV7_OK, "eval");

    struct rwkv7_prefix_cache *pc = NULL;
    size_t one = rwkv7_state_n_floats(rwkv7_model_hparams(m)) * sizeof(float) + 256 * sizeof(int32_t);
    CHECK(rwkv7_prefix_cache_init(m, 2 * one, &pc) == RWKV7_OK, "cache init");
    CHECK(rwkv7_prefix_cache_init(m, 16, &(struct rwkv7_prefix_cache *){NULL}) == RWKV7_ERR_ARG, "tiny budget");
    if (!pc) return;
    size_t got = 99;
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, n - 1, &got) == RWKV7_OK && got == 0, "empty cache hit %zu", got);
    CHECK(rwkv7_ctx_eval(ctx, 1, &s1, (int)p, ids, RWKV7_LOGITS_NONE, NULL) == RWKV7_OK, "eval");
    CHECK(rwkv7_prefix_cache_store(pc, ctx, 1, ids, p) == RWKV7_OK, "store");
    CHECK(rwkv7_state_reset(ctx, 1) == RWKV7_OK, "reset");
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, n - 1, &got) == RWKV7_OK && got == p, "hit of %zu, want %zu", got, p);
    CHECK(rwkv7_ctx_eval(ctx, 1, &s1, (int)(n - got), ids + got, RWKV7_LOGITS_LAST, lb) == RWKV7_OK, "eval");
    CHECK(memcmp(la, lb, (size_t)V * sizeof(float)) == 0, "cache hit logits differ from the uncached split");
    /* One prefill of everything: equal up to float summation order. */
    CHECK(rwkv7_state_reset(ctx, 0) == RWKV7_OK, "reset");
    CHECK(rwkv7_ctx_eval(ctx, 1, &s0, (int)n, ids, RWKV7_LOGITS_LAST, lc) == RWKV7_OK, "eval");
    struct test_logit_cmp c = test_compare_logits(lb, lc, 1, V);
    CHECK(c.rel_maxdiff <= 1e-5 && c.top1 == 1.0, "cache hit vs full prefill: rel %.3g", c.rel_maxdiff);

    /* A prefix longer than the query is no match; a different query misses. */
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, p - 1, &got) == RWKV7_OK && got == 0, "short query hit");
    int32_t other[4] = {'X', 'y', 'z', '!'};
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, other, 4, &got) == RWKV7_OK && got == 0, "foreign hit");
    /* LRU by bytes: the budget holds two entries; touching the first keeps it over the second. */
    CHECK(rwkv7_prefix_cache_store(pc, ctx, 1, ids, 10) == RWKV7_OK, "store");
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, p, &got) == RWKV7_OK && got == p, "hit");
    CHECK(rwkv7_prefix_cache_store(pc, ctx, 1, ids, 20) == RWKV7_OK, "store");
    struct rwkv7_prefix_cache_stats stats;
    rwkv7_prefix_cache_get_stats(pc, &stats);
    CHECK(stats.n_entries == 2 && stats.evictions == 1 && stats.hits == 2 && stats.misses == 3,
          "stats: %zu entries %llu evictions %llu hits %llu misses", stats.n_entries,
          (unsigned long long)stats.evictions, (unsigned long long)stats.hits, (unsigned long long)stats.misses);
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, 15, &got) == RWKV7_OK && got == 0, "evicted entry still hit");
    CHECK(rwkv7_prefix_cache_lookup(pc, ctx, 1, ids, n, &got) == RWKV7_OK && got == p, "kept entry lost");
    rwkv7_prefix_cache_free(pc);
    free(la);
    free(lb);
    free(lc);
    rwkv7_ctx_free(ctx);
}

/* Runs a shell command line; returns its exit code. */
static int run(const char *cmd) {
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* Reads a CLI output file without its final newline (each run ends its text with one). */
static char *output(const char *path) {
    size_t n = 0;
    char *s = test_read_file(path, &n);
    if (!s) return NULL;
    char *t = realloc(s, n + 1);
    if (!t) { free(s); return NULL; }
    t[n] = 0;
    if (n && t[n - 1] == '\n') t[n - 1] = 0;
    return t;
}

/* Generate N, save, resume M == generate N + M, on one backend. */
static void test_cli_resume(const char *backend) {
    char model[600], cmd[2400], st_path[400], o1[400], o2[400], o3[400], common[400];
    test_fixture(model, sizeof model, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    path_of(st_path, sizeof st_path, "cli.state");
    path_of(o1, sizeof o1, "first.txt");
    path_of(o2, sizeof o2, "second.txt");
    path_of(o3, sizeof o3, "whole.txt");
    snprintf(common, sizeof common, "--backend %s -t 1 --temp 0.9 --top-k 0 --top-p 1 --min-p 0 "
             "--presence-penalty 0.3 --frequency-penalty 0.2 --repeat-penalty 1.1 -s 42 --ignore-eos --no-perf", backend);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' %s -p 'Once upon a time' -n 50 > '%s' 2>/dev/null",
             RWKV7_CLI_PATH, model, common, o3);
    CHECK(run(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' %s -p 'Once upon a time' -n 20 --state-out '%s' > '%s' 2>/dev/null",
             RWKV7_CLI_PATH, model, common, st_path, o1);
    CHECK(run(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' %s -p '' -n 30 --state-in '%s' > '%s' 2>/dev/null",
             RWKV7_CLI_PATH, model, common, st_path, o2);
    CHECK(run(cmd) == 0, "%s", cmd);
    char *a = output(o1), *b = output(o2), *whole = output(o3);
    CHECK(a && b && whole, "outputs missing");
    if (a && b && whole) {
        size_t na = strlen(a);
        CHECK(strlen(whole) > na + 10, "whole run too short: '%s'", whole);
        CHECK(strncmp(whole, a, na) == 0 && strcmp(whole + na, b) == 0,
              "%s: resumed output differs:\n  whole:   '%s'\n  first:   '%s'\n  resumed: '%s'", backend, whole, a, b);
    }
    free(a);
    free(b);
    free(whole);
    /* A state of another model is refused with exit code 2 and one line on stderr. */
    char other[600];
    test_fixture(other, sizeof other, "rand-c256-l2/rand-c256-l2-F32.gguf");
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --backend cpu -p '' -n 3 --state-in '%s' > /dev/null 2>&1",
             RWKV7_CLI_PATH, other, st_path);
    CHECK(run(cmd) == 2, "foreign state not refused with exit 2: %s", cmd);
}

int main(void) {
    char probe[600];
    test_fixture(probe, sizeof probe, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/rwkv7-test-state-%ld", (long)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_tmp);
    CHECK(run(cmd) == 0, "mkdir %s", g_tmp);
    struct rwkv7_model *m = load("tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    struct rwkv7_model *m16 = load("tiny-rwkv7-834K/tiny-rwkv7-834K-F16.gguf");
    struct rwkv7_model *other = load("rand-c256-l2/rand-c256-l2-F32.gguf");
    if (m) {
        test_round_trip_and_refusals(m, m16, other);
        test_initial_state(m);
        test_prefix_cache(m);
    }
    test_cli_resume("cpu");
    /* "Resuming is exact on every backend": repeat on each GPU backend that can start here. */
    const struct rwkv7_backend_reg *r;
    for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL; i++) {
        if (!r->gpu || !r->init) continue;
        struct rwkv7_backend *be = NULL;
        if (rwkv7_backend_init(r->name, NULL, 1, true, &be) != RWKV7_OK) {
            fprintf(stderr, "test_state: %s resume not checked: %s\n", r->name, rwkv7_last_error());
            continue;
        }
        rwkv7_backend_free(be);
        test_cli_resume(r->name);
    }
    rwkv7_model_free(m);
    rwkv7_model_free(m16);
    rwkv7_model_free(other);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    run(cmd);
    return test_finish("test_state");
}
