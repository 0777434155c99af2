/* test_cli_quantize.c: `rwkv7 quantize`. For every file type it writes, from the rand-c256-l2 F32
 * fixture: the file has llama.cpp's tensor types for that file type (bench_synth's table; tensors
 * llama.cpp never quantizes keep the source type) and general.file_type; it loads, and its logits
 * match the exact function of the file (every tensor dequantized to F32) within the fixtures
 * README limits; and its mean KL from the F32 original is at most 1.05x that of llama.cpp's own
 * file of that type where the fixtures have one (llama.cpp's was made from an F16 conversion, so
 * this favours us slightly at 8 bits; it is a regression guard, the real comparison is in
 * bench/RESULTS.md). Refusals: an unknown type, an IQ2/IQ1 type without an importance matrix, a
 * quantized input without --allow-requantize, an output path that is a directory: one line,
 * exit 2, and no output file. */
#define _POSIX_C_SOURCE 200809L
#include "bench_synth.h"
#include "dtype.h"
#include "gguf.h"
#include "gguf_write.h"
#include "status.h"

#include <sys/stat.h>

#include "cli_run.h"
#include "model_check.h"

static char g_dir[256];

static bool is_float_type(int t) { return t == RWKV7_DTYPE_F32 || t == RWKV7_DTYPE_F16 || t == RWKV7_DTYPE_BF16; }

/* Logits of all n tokens from a zero state, for a model file or image. */
static float *eval_all(struct rwkv7_model *m, const int32_t *ids, int n) {
    const int V = rwkv7_model_hparams(m)->n_vocab;
    float *lg = malloc((size_t)n * V * sizeof(float));
    struct rwkv7_ctx *ctx = NULL;
    int slot = 0;
    if (rwkv7_ctx_init(m, 1, &ctx) != RWKV7_OK || rwkv7_ctx_eval(ctx, 1, &slot, n, ids, RWKV7_LOGITS_ALL, lg) != RWKV7_OK) {
        CHECK(0, "eval: %s", rwkv7_last_error());
        free(lg);
        lg = NULL;
    }
    rwkv7_ctx_free(ctx);
    return lg;
}

/* The file with every tensor dequantized to F32, as a memory image: its logits are the exact
 * function of the quantized file. */
static void *dequantized_image(struct rwkv7_gguf *g, size_t *size) {
    struct rwkv7_gguf_writer *w = NULL;
    if (rwkv7_gguf_writer_init(&w) != RWKV7_OK) return NULL;
    for (int64_t i = 0; i < rwkv7_gguf_n_kv(g); i++) {
        struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
        if (k.len == 17 && !memcmp(k.ptr, "general.alignment", 17)) continue;
        rwkv7_gguf_writer_copy_kv(w, g, i);
    }
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        const int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float *f = malloc((size_t)n * sizeof(float));
        rwkv7_dtype_get(t->type)->to_f32(t->data, f, n);
        rwkv7_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, RWKV7_DTYPE_F32, f, (size_t)n * sizeof(float));
        free(f);
    }
    void *img = NULL;
    if (rwkv7_gguf_writer_write_memory(w, &img, size) != RWKV7_OK) img = NULL;
    rwkv7_gguf_writer_free(w);
    return img;
}

/* full = false: only the layout and file type (a file type whose tensor types equal an earlier
 * one's, e.g. Q4_K_S after Q4_K_M, gives the same tensors; its logits were checked then). */
static void check_type(const struct bench_ftype *ft, const char *src, struct rwkv7_gguf *gsrc, const int32_t *ids,
                       int n, const float *ref_f32, bool full) {
    char out[512], args[2048];
    snprintf(out, sizeof out, "%s/q-%s.gguf", g_dir, ft->name);
    snprintf(args, sizeof args, "quantize %s %s %s -t 2 --no-progress", src, out, ft->name);
    int rc = cli_run(args);
    CHECK(rc == 0, "%s: exit %d: %s", ft->name, rc, g_err);
    if (rc) return;
    struct rwkv7_gguf *g = NULL;
    if (rwkv7_gguf_open(out, &g) != RWKV7_OK) {
        CHECK(0, "%s: output does not open: %s", ft->name, rwkv7_last_error());
        return;
    }
    uint32_t id = 0;
    CHECK(rwkv7_gguf_get_u32(g, "general.file_type", &id) == RWKV7_OK && id == (uint32_t)ft->id, "%s: file_type %u",
          ft->name, id);
    CHECK(rwkv7_gguf_n_tensors(g) == rwkv7_gguf_n_tensors(gsrc), "%s: tensor count", ft->name);
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(gsrc); i++) {
        const struct rwkv7_gguf_tensor *s = rwkv7_gguf_tensor(gsrc, i), *t = rwkv7_gguf_find_tensor(g, s->name);
        int want = bench_tensor_quantizable(s->name, s->n_dims) ? bench_ftype_tensor_type(ft, s->name, s->ne[0]) : s->type;
        CHECK(t && t->type == want, "%s: tensor %s has type %s, llama.cpp gives %s", ft->name, s->name,
              t ? rwkv7_dtype_name(t->type) : "(missing)", rwkv7_dtype_name(want));
    }
    if (!full) {
        rwkv7_gguf_free(g);
        unlink(out);
        return;
    }
    /* logits of the file vs the exact function of the file */
    size_t isz = 0;
    void *img = dequantized_image(g, &isz);
    struct rwkv7_model_params mp = {"cpu", NULL, 2, false, true};
    struct rwkv7_model *mq = NULL, *mx = NULL;
    CHECK(img && rwkv7_model_load_memory(img, isz, &mp, &mx) == RWKV7_OK, "%s: exact image: %s", ft->name, rwkv7_last_error());
    CHECK(rwkv7_model_load(out, &mp, &mq) == RWKV7_OK, "%s: load: %s", ft->name, rwkv7_last_error());
    if (mq && mx) {
        const int V = rwkv7_model_hparams(mq)->n_vocab;
        float *lq = eval_all(mq, ids, n), *lx = eval_all(mx, ids, n);
        char tag[64];
        snprintf(tag, sizeof tag, "-%s.", is_float_type(ft->body) && ft->body != RWKV7_DTYPE_F32 ? "F16" : ft->body == RWKV7_DTYPE_F32 ? "F32" : "Q");
        struct limits lim = limits_for(tag);
        if (lq && lx) {
            struct test_logit_cmp c = test_compare_logits(lq, lx, n, V);
            CHECK(c.rel_maxdiff <= lim.rel && c.mean_kl <= lim.kl && c.top1 >= lim.top1,
                  "%s: vs exact: rel %.3g kl %.3g top1 %.3f", ft->name, c.rel_maxdiff, c.mean_kl, c.top1);
            /* quality against llama.cpp's file of the same type */
            struct test_logit_cmp ours = test_compare_logits(lx, ref_f32, n, V);
            char rel[128], path[512];
            snprintf(rel, sizeof rel, "rand-c256-l2/rand-c256-l2-%s.exact.logits.f32", ft->name);
            snprintf(path, sizeof path, "%s/%s", RWKV7_FIXTURES_DIR, rel);
            size_t rn = 0;
            float *theirs_l = test_path_exists(path) ? test_read_file(path, &rn) : NULL;
            if (theirs_l && rn == (size_t)n * V * sizeof(float)) {
                struct test_logit_cmp theirs = test_compare_logits(theirs_l, ref_f32, n, V);
                fprintf(stderr, "%-8s KL vs F32: ours %.3e  llama.cpp %.3e  (%.2fx)\n", ft->name, ours.mean_kl, theirs.mean_kl,
                        ours.mean_kl / theirs.mean_kl);
                if (!is_float_type(ft->body))
                    CHECK(ours.mean_kl <= 1.05 * theirs.mean_kl, "%s: KL %.3e vs llama.cpp's %.3e", ft->name, ours.mean_kl,
                          theirs.mean_kl);
            } else {
                fprintf(stderr, "%-8s KL vs F32: ours %.3e\n", ft->name, ours.mean_kl);
            }
            free(theirs_l);
        }
        free(lq);
        free(lx);
    }
    rwkv7_model_free(mq);
    rwkv7_model_free(mx);
    free(img);
    rwkv7_gguf_free(g);
    unlink(out);
}

static void check_refused(const char *args, const char *out, const char *what) {
    int rc = cli_run(args);
    CHECK(rc == 2, "%s: exit %d (want 2): %s", what, rc, g_err);
    CHECK(cli_count_lines(g_err) == 1, "%s: want one line on stderr, got: %s", what, g_err);
    struct stat st;
    CHECK(out == NULL || stat(out, &st) != 0, "%s: left an output file %s", what, out);
}

int main(void) {
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    snprintf(g_dir, sizeof g_dir, "/tmp/rwkv7_qtest.%d", (int)getpid());
    mkdir(g_dir, 0700);
    char src[512], tokp[512], reff[512];
    test_fixture(src, sizeof src, "rand-c256-l2/rand-c256-l2-F32.gguf");
    test_fixture(tokp, sizeof tokp, "rand-c256-l2/tokens.txt");
    test_fixture(reff, sizeof reff, "rand-c256-l2/rand-c256-l2-F32.exact.logits.f32");
    int n = 0;
    int32_t *ids = read_ids(tokp, &n);
    size_t rn = 0;
    float *ref = test_read_file(reff, &rn);
    struct rwkv7_gguf *gsrc = NULL;
    CHECK(ids && ref && rwkv7_gguf_open(src, &gsrc) == RWKV7_OK, "fixtures");
    if (!gsrc) return test_finish("test_cli_quantize");
    int nft;
    const struct bench_ftype *l = bench_ftype_list(&nft);
    static const char *const refused[] = {"IQ2_M", "IQ2_XS", "IQ2_S", "IQ2_XXS", "IQ1_M", "IQ1_S", "Q2_0", "Q1_0"};
    for (int i = 0; i < nft; i++) {
        bool skip = false;
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) skip |= !strcmp(l[i].name, refused[k]);
        bool seen = false;
        for (int k = 0; k < i; k++)
            seen |= l[k].body == l[i].body && l[k].embd == l[i].embd && l[k].output == l[i].output;
        if (!skip) check_type(&l[i], src, gsrc, ids, n, ref, !seen);
    }
    char args[2048], out[512];
    snprintf(out, sizeof out, "%s/refused.gguf", g_dir);
    snprintf(args, sizeof args, "quantize %s %s Q4_X", src, out);
    check_refused(args, out, "unknown type");
    snprintf(args, sizeof args, "quantize %s %s IQ2_XXS", src, out);
    check_refused(args, out, "IQ2_XXS without imatrix");
    CHECK(strstr(g_err, "importance matrix") != NULL, "imatrix message: %s", g_err);
    char q8[512];
    test_fixture(q8, sizeof q8, "rand-c256-l2/rand-c256-l2-Q8_0.gguf");
    snprintf(args, sizeof args, "quantize %s %s Q4_0", q8, out);
    check_refused(args, out, "quantized input");
    CHECK(strstr(g_err, "--allow-requantize") != NULL, "requantize message: %s", g_err);
    snprintf(args, sizeof args, "quantize %s %s Q4_0", src, g_dir);
    check_refused(args, NULL, "directory output");
    snprintf(args, sizeof args, "quantize %s %s/missing-dir/x.gguf Q4_0", src, g_dir);
    int rc = cli_run(args);
    CHECK(rc == 2 && cli_count_lines(g_err) == 1, "missing directory: exit %d: %s", rc, g_err);
    snprintf(args, sizeof args, "quantize %s %s/model.txt Q4_0", tokp, g_dir);
    check_refused(args, NULL, "not a GGUF");
    snprintf(args, sizeof args, "quantize %s", src);
    check_refused(args, NULL, "missing arguments");
    /* requantizing works when asked, and the directory holds only what we wrote */
    snprintf(args, sizeof args, "quantize %s %s Q4_0 --allow-requantize --no-progress", q8, out);
    CHECK(cli_run(args) == 0, "--allow-requantize: %s", g_err);
    unlink(out);
    CHECK(cli_run("quantize --help") == 0 && strstr(g_out, "--allow-requantize") && strstr(g_out, "Q4_K_M"), "--help: %s", g_out);
    CHECK(rmdir(g_dir) == 0, "leftover files in %s", g_dir);
    rwkv7_gguf_free(gsrc);
    free(ids);
    free(ref);
    return test_finish("test_cli_quantize");
}
