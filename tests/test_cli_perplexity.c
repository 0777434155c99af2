/* test_cli_perplexity.c: `rwkv7 perplexity`. The statistics code (host/ppl_stats.c) against direct
 * computations (KL, percentiles, error bars, the 16-bit base rows); the command's PPL against a
 * hand computation from the library's logits (fresh state per chunk, second half scored, as
 * llama-perplexity); --kl-divergence-base / --kl-divergence against a direct KL and top-1 count
 * between the tiny model's F32 and Q4_0 files (and zero against itself); refusals of a text that
 * is too short, a missing or damaged base file and a text that does not match it. */
#define _POSIX_C_SOURCE 200809L
#include "ppl_stats.h"

#include <sys/stat.h>

#include "cli_run.h"
#include "model_check.h"

static double direct_kl(const double *lb, const double *lq, int V) {
    double kl = 0;
    for (int i = 0; i < V; i++) kl += exp(lb[i]) * (lb[i] - lq[i]);
    return kl;
}

static void check_stats(void) {
    struct test_rng rng = {12345};
    enum { V = 300, N = 400 };
    struct kld_acc a = {0};
    double *lb = malloc(sizeof(double) * V), *lq = malloc(sizeof(double) * V), sum_kl = 0, sum_dp = 0;
    float *fb = malloc(sizeof(float) * V), *fq = malloc(sizeof(float) * V);
    int same = 0;
    for (int r = 0; r < N; r++) {
        for (int i = 0; i < V; i++) fb[i] = 3.0f * test_rng_gauss(&rng), fq[i] = fb[i] + 0.2f * test_rng_gauss(&rng);
        const int ab = ppl_log_softmax(fb, V, lb), aq = ppl_log_softmax(fq, V, lq);
        double s = 0;
        for (int i = 0; i < V; i++) s += exp(lb[i]);
        CHECK(fabs(s - 1) < 1e-12, "log-softmax does not normalise: %.15f", s);
        const int tok = (int)(test_rng_next(&rng) % V);
        kld_acc_add(&a, lb, lq, V, tok);
        sum_kl += direct_kl(lb, lq, V);
        sum_dp += exp(lq[tok]) - exp(lb[tok]);
        same += ab == aq;
    }
    struct kld_summary s;
    kld_summarize(&a, &s);
    CHECK(fabs(s.kld_mean - sum_kl / N) < 1e-12, "mean KLD %.12g vs %.12g", s.kld_mean, sum_kl / N);
    CHECK(fabs(s.dp_mean - sum_dp / N) < 1e-12, "mean dp %.12g vs %.12g", s.dp_mean, sum_dp / N);
    CHECK(fabs(s.same_top - (double)same / N) < 1e-12, "same top %.6f vs %.6f", s.same_top, (double)same / N);
    CHECK(s.kld_min <= s.kld_1 && s.kld_1 <= s.kld_median && s.kld_median <= s.kld_99 && s.kld_99 <= s.kld_max, "KLD order");
    CHECK(s.cor > 0.5 && s.cor <= 1.0, "correlation %.4f", s.cor);
    CHECK(fabs(s.ratio - s.ppl_q / s.ppl_base) < 1e-9 * s.ratio, "ratio %.9g vs %.9g", s.ratio, s.ppl_q / s.ppl_base);
    kld_acc_free(&a);
    /* percentiles with linear interpolation; error bars by formula */
    double v[101];
    for (int i = 0; i < 101; i++) v[i] = i + 1;
    CHECK(ppl_percentile(v, 101, 0.5) == 51 && ppl_percentile(v, 101, 0.99) == 100 && ppl_percentile(v, 101, 1.0) == 101 &&
          fabs(ppl_percentile(v, 101, 0.999) - 100.9) < 1e-9, "percentiles");
    struct ppl_acc p = {0};
    const double lps[4] = {-1.0, -2.0, -0.5, -3.5};
    for (int i = 0; i < 4; i++) ppl_acc_add(&p, lps[i]);
    const double mean = 7.0 / 4, var = (1 + 4 + 0.25 + 12.25) / 4 - mean * mean;
    CHECK(fabs(ppl_value(&p) - exp(mean)) < 1e-12, "ppl %.12g", ppl_value(&p));
    CHECK(fabs(ppl_error(&p) - exp(mean) * sqrt(var / 3)) < 1e-12, "ppl error %.12g", ppl_error(&p));
    /* 16-bit base rows: tiny log-prob error, and KL through them stays exact to ~1e-8 */
    for (int i = 0; i < V; i++) fb[i] = 4.0f * test_rng_gauss(&rng), fq[i] = fb[i] + 0.05f * test_rng_gauss(&rng);
    ppl_log_softmax(fb, V, lb);
    ppl_log_softmax(fq, V, lq);
    uint16_t *codes = malloc(2 * V);
    double *ld = malloc(sizeof(double) * V), worst = 0;
    float lmin;
    ppl_row_encode(lb, V, &lmin, codes);
    ppl_row_decode(lmin, codes, V, ld);
    for (int i = 0; i < V; i++)
        if (lb[i] > -20 && fabs(ld[i] - lb[i]) > worst) worst = fabs(ld[i] - lb[i]);
    CHECK(worst < 4e-4, "decoded log-prob error %.3g", worst);
    CHECK(fabs(direct_kl(ld, lq, V) - direct_kl(lb, lq, V)) < 5e-3 * direct_kl(lb, lq, V), "KL through 16-bit rows: %.3g vs %.3g",
          direct_kl(ld, lq, V), direct_kl(lb, lq, V));
    free(codes), free(ld), free(lb), free(lq), free(fb), free(fq);
}

/* Per-row log-softmax in double, written out here independently of ppl_stats.c. */
static void lsm(const float *l, int V, double *o) {
    double mx = l[0], s = 0;
    for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < V; i++) s += exp(l[i] - mx);
    for (int i = 0; i < V; i++) o[i] = l[i] - mx - log(s);
}

static double parse_after(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

int main(void) {
    check_stats();
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    char f32[512], q4[512], text[256], base[256], args[4096];
    test_fixture(f32, sizeof f32, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    test_fixture(q4, sizeof q4, "tiny-rwkv7-834K/tiny-rwkv7-834K-Q4_0.gguf");
    snprintf(text, sizeof text, "/tmp/rwkv7_ppl_text.%d", (int)getpid());
    snprintf(base, sizeof base, "/tmp/rwkv7_ppl_base.%d", (int)getpid());
    const char *sentence = "The quick brown fox jumps over the lazy dog; then it sleeps in the warm afternoon sun. ";
    FILE *f = fopen(text, "wb");
    for (int i = 0; i < 6; i++) fputs(sentence, f);
    fclose(f);
    const int ctx = 64;
    /* hand computation */
    struct rwkv7_model_params mp = {"cpu", NULL, 2, false, true};
    struct rwkv7_model *m32 = NULL, *m4 = NULL;
    CHECK(rwkv7_model_load(f32, &mp, &m32) == RWKV7_OK && rwkv7_model_load(q4, &mp, &m4) == RWKV7_OK, "load");
    if (!m32 || !m4) return test_finish("test_cli_perplexity");
    const int V = rwkv7_model_hparams(m32)->n_vocab;
    size_t tn = strlen(sentence) * 6, n_ids = 0;
    char *txt = test_read_file(text, NULL);
    int32_t *ids = malloc(tn * sizeof *ids);
    CHECK(rwkv7_tokenize(rwkv7_model_tokenizer(m32), txt, tn, ids, tn, &n_ids) == RWKV7_OK, "tokenize");
    const int n_chunk = (int)(n_ids / ctx), first = ctx / 2;
    float *l32 = malloc(sizeof(float) * ctx * V), *l4 = malloc(sizeof(float) * ctx * V);
    double *a = malloc(sizeof(double) * V), *b = malloc(sizeof(double) * V), nll = 0, nll1 = 0, kl = 0;
    int n_sc = 0, same = 0;
    for (int c = 0; c < n_chunk; c++) {
        struct rwkv7_ctx *x32 = NULL, *x4 = NULL;
        int slot = 0;
        rwkv7_ctx_init(m32, 1, &x32);
        rwkv7_ctx_init(m4, 1, &x4);
        rwkv7_ctx_eval(x32, 1, &slot, ctx, ids + c * ctx, RWKV7_LOGITS_ALL, l32);
        rwkv7_ctx_eval(x4, 1, &slot, ctx, ids + c * ctx, RWKV7_LOGITS_ALL, l4);
        for (int j = first; j < ctx - 1; j++) {
            lsm(l32 + (size_t)j * V, V, a);
            lsm(l4 + (size_t)j * V, V, b);
            nll -= a[ids[c * ctx + j + 1]];
            kl += direct_kl(a, b, V);
            int aa = 0, ab = 0;
            for (int i = 1; i < V; i++) aa = a[i] > a[aa] ? i : aa, ab = b[i] > b[ab] ? i : ab;
            same += aa == ab;
            n_sc++;
        }
        if (c == 0) nll1 = nll / n_sc;
        rwkv7_ctx_free(x32);
        rwkv7_ctx_free(x4);
    }
    const double ppl = exp(nll / n_sc), ppl1 = exp(nll1);
    snprintf(args, sizeof args, "perplexity -m %s -f %s -c %d -np 3 -t 2 --backend cpu --kl-divergence-base %s", f32, text, ctx, base);
    int rc = cli_run(args);
    CHECK(rc == 0, "perplexity exit %d: %s", rc, g_err);
    const double got = parse_after(g_out, "Final estimate: PPL = "), got1 = parse_after(g_out, "[1]");
    fprintf(stderr, "PPL: command %.4f, by hand %.6f (%d chunks, %d scored tokens); chunk 1: %.4f vs %.6f\n", got, ppl,
            n_chunk, n_sc, got1, ppl1);
    CHECK(fabs(got - ppl) <= 1e-4 * ppl + 6e-5, "PPL %.4f, by hand %.6f", got, ppl);
    CHECK(fabs(got1 - ppl1) <= 1e-4 * ppl1 + 6e-5, "chunk 1 PPL %.4f, by hand %.6f", got1, ppl1);
    /* plain runs take the threaded single-precision scoring path: same number */
    snprintf(args, sizeof args, "perplexity -m %s -f %s -c %d -np 2 -t 2 --backend cpu", f32, text, ctx);
    rc = cli_run(args);
    const double plain = parse_after(g_out, "Final estimate: PPL = ");
    CHECK(rc == 0 && fabs(plain - ppl) <= 1e-4 * ppl + 6e-5, "plain PPL %.4f, by hand %.6f (exit %d)", plain, ppl, rc);
    /* KL of Q4_0 against the saved F32 log-probabilities */
    snprintf(args, sizeof args, "perplexity -m %s --kl-divergence-base %s --kl-divergence -np 2 -t 2 --backend cpu", q4, base);
    rc = cli_run(args);
    CHECK(rc == 0, "kl exit %d: %s", rc, g_err);
    const double kld = parse_after(g_out, "Mean    KLD:"), top = parse_after(g_out, "Same top p:");
    const double pbase = parse_after(g_out, "Mean PPL(base)                :");
    fprintf(stderr, "KLD: command %.6f, by hand %.8f; same top %.3f%% vs %.3f%%\n", kld, kl / n_sc, top, 100.0 * same / n_sc);
    CHECK(fabs(kld - kl / n_sc) <= 0.01 * kl / n_sc + 2e-6, "mean KLD %.6f, by hand %.8f", kld, kl / n_sc);
    CHECK(fabs(top - 100.0 * same / n_sc) < 2e-3, "same top %.3f vs %.3f", top, 100.0 * same / n_sc);
    CHECK(fabs(pbase - ppl) <= 1e-3 * ppl, "PPL(base) %.6f vs %.6f", pbase, ppl);
    snprintf(args, sizeof args, "perplexity -m %s --kl-divergence-base %s --kl-divergence -f %s --backend cpu", f32, base, text);
    rc = cli_run(args);
    CHECK(rc == 0 && fabs(parse_after(g_out, "Mean    KLD:")) < 2e-6 && parse_after(g_out, "Same top p:") == 100.0,
          "self KL: exit %d: %s", rc, g_out);
    /* refusals */
    snprintf(args, sizeof args, "perplexity -m %s -f %s -c 512 --backend cpu", f32, text);
    CHECK(cli_run(args) == 2 && cli_count_lines(g_err) == 1 && strstr(g_err, "needs at least"), "short text: %s", g_err);
    snprintf(args, sizeof args, "perplexity -m %s --kl-divergence --backend cpu", f32);
    CHECK(cli_run(args) == 2 && cli_count_lines(g_err) == 1, "no base: %s", g_err);
    snprintf(args, sizeof args, "perplexity -m %s -f %s -c 64 --kl-divergence-base %s --kl-divergence --backend cpu", f32, f32, base);
    CHECK(cli_run(args) == 2 && strstr(g_err, "differ"), "other text: %s", g_err);
    CHECK(truncate(base, 1000) == 0, "truncate");
    snprintf(args, sizeof args, "perplexity -m %s --kl-divergence-base %s --kl-divergence --backend cpu", f32, base);
    CHECK(cli_run(args) == 2 && cli_count_lines(g_err) == 1, "damaged base: %s", g_err);
    CHECK(cli_run("perplexity --help") == 0 && strstr(g_out, "--kl-divergence-base"), "--help");
    unlink(base);
    unlink(text);
    free(txt), free(ids), free(l32), free(l4), free(a), free(b);
    rwkv7_model_free(m32);
    rwkv7_model_free(m4);
    return test_finish("test_cli_perplexity");
}
