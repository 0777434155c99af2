/* bench_quality.c: `rwkv7 bench --quality`: speed and quality per file type in one table. For a
 * base model (a GGUF, or a synthetic geometry built in F16) each listed file type is quantized in
 * memory (quantize_model.c, the code of `rwkv7 quantize`), loaded through the normal path, timed
 * (prefill and decode t/s) and scored against the base on a text: PPL, mean and 99.9% KL
 * divergence, same top-1 (the perplexity method of docs/perplexity.md: chunks from a fresh state,
 * second half scored). Without -f the text is sampled from the base model itself with a fixed
 * seed, so no download is needed. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bench_out.h"
#include "commands.h"
#include "dtype.h"
#include "ppl_stats.h"
#include "quantize.h"
#include "quantize_model.h"

struct qrow {
    char type[16];
    uint64_t size, n_params;
    double bpw, pp_ts, tg_ts, ppl, kld_mean, kld_999, same_top;
};

struct qtext {
    const int32_t *toks; /* n_chunk x n_ctx */
    int n_chunk, n_ctx, n_par;
};

/* Log-probability rows of the scored positions, [chunk][j][V] as float (the base's, kept in
 * memory), or scored against them into a kld_acc. */
static enum rwkv7_status eval_text(struct rwkv7_model *m, const struct qtext *t, float *save, const float *base,
                                   struct kld_acc *ka, struct ppl_acc *pa) {
    const int V = rwkv7_model_hparams(m)->n_vocab, first = t->n_ctx / 2, ns_all = t->n_ctx - 1 - first;
    struct rwkv7_ctx *ctx = NULL;
    enum rwkv7_status st = rwkv7_ctx_init(m, t->n_par, &ctx);
    if (st != RWKV7_OK) return st;
    float *logits = malloc((size_t)t->n_par * ns_all * V * sizeof(float));
    int32_t *tb = malloc((size_t)t->n_par * t->n_ctx * sizeof *tb);
    double *lp = malloc((size_t)V * sizeof(double)), *lb = malloc((size_t)V * sizeof(double));
    int slots[256];
    if (!logits || !tb || !lp || !lb) st = RWKV7_ERR_OOM;
    for (int g = 0; g < t->n_chunk && st == RWKV7_OK; g += t->n_par) {
        const int nb = t->n_chunk - g < t->n_par ? t->n_chunk - g : t->n_par;
        for (int s = 0; s < nb; s++) slots[s] = s, rwkv7_state_reset(ctx, s);
        for (int s = 0; s < nb; s++) memcpy(tb + (size_t)s * first, t->toks + (size_t)(g + s) * t->n_ctx, (size_t)first * 4);
        st = rwkv7_ctx_eval(ctx, nb, slots, first, tb, RWKV7_LOGITS_NONE, NULL);
        for (int s = 0; s < nb; s++)
            memcpy(tb + (size_t)s * ns_all, t->toks + (size_t)(g + s) * t->n_ctx + first, (size_t)ns_all * 4);
        if (st == RWKV7_OK) st = rwkv7_ctx_eval(ctx, nb, slots, ns_all, tb, RWKV7_LOGITS_ALL, logits);
        for (int s = 0; s < nb && st == RWKV7_OK; s++) {
            for (int j = 0; j < ns_all; j++) {
                const int tok = t->toks[(size_t)(g + s) * t->n_ctx + first + j + 1];
                const size_t row = ((size_t)(g + s) * ns_all + j) * V;
                ppl_log_softmax(logits + ((size_t)s * ns_all + j) * V, V, lp);
                if (pa) ppl_acc_add(pa, lp[tok]);
                if (save)
                    for (int v = 0; v < V; v++) save[row + v] = (float)lp[v];
                if (ka && base) {
                    for (int v = 0; v < V; v++) lb[v] = base[row + v];
                    if (kld_acc_add(ka, lb, lp, V, tok)) st = RWKV7_ERR_OOM;
                }
            }
        }
    }
    free(logits);
    free(tb);
    free(lp);
    free(lb);
    rwkv7_ctx_free(ctx);
    return st;
}

/* Text sampled from the base model: n_chunk independent streams of n_ctx tokens from token 0 at
 * temperature 1, all decoded together; a fixed seed makes it the same every run. */
static enum rwkv7_status sample_text(struct rwkv7_model *m, int n_chunk, int n_ctx, uint64_t seed, int32_t *out) {
    const int V = rwkv7_model_hparams(m)->n_vocab;
    struct rwkv7_ctx *ctx = NULL;
    enum rwkv7_status st = rwkv7_ctx_init(m, n_chunk, &ctx);
    if (st != RWKV7_OK) return st;
    float *logits = malloc((size_t)n_chunk * V * sizeof(float));
    int32_t *cur = malloc((size_t)n_chunk * sizeof *cur);
    int *slots = malloc((size_t)n_chunk * sizeof *slots);
    if (!logits || !cur || !slots) st = RWKV7_ERR_OOM;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n_chunk && st == RWKV7_OK; i++) slots[i] = i, cur[i] = 0;
    for (int p = 0; p < n_ctx && st == RWKV7_OK; p++) {
        for (int i = 0; i < n_chunk; i++) out[(size_t)i * n_ctx + p] = cur[i];
        if (p == n_ctx - 1) break;
        st = rwkv7_ctx_eval(ctx, n_chunk, slots, 1, cur, RWKV7_LOGITS_LAST, logits);
        for (int i = 0; i < n_chunk && st == RWKV7_OK; i++) {
            const float *l = logits + (size_t)i * V;
            float mx = l[0];
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double sum = 0;
            for (int v = 0; v < V; v++) sum += exp((double)(l[v] - mx));
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            double u = (double)(s >> 11) * (1.0 / 9007199254740992.0) * sum, acc = 0;
            int pick = V - 1;
            for (int v = 0; v < V; v++) {
                acc += exp((double)(l[v] - mx));
                if (acc >= u) {
                    pick = v;
                    break;
                }
            }
            cur[i] = pick;
        }
    }
    free(logits);
    free(cur);
    free(slots);
    rwkv7_ctx_free(ctx);
    return st;
}

/* Prefill t/s (n_prompt tokens in one call) and decode t/s (n_gen single-token calls), mean of
 * reps runs after one warm-up. */
static enum rwkv7_status time_model(struct rwkv7_model *m, int n_prompt, int n_gen, int reps, double *pp, double *tg) {
    struct rwkv7_ctx *ctx = NULL;
    enum rwkv7_status st = rwkv7_ctx_init(m, 1, &ctx);
    if (st != RWKV7_OK) return st;
    const int V = rwkv7_model_hparams(m)->n_vocab;
    int32_t *toks = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *toks);
    float *logits = malloc((size_t)V * sizeof(float));
    int slot = 0;
    if (!toks || !logits) st = RWKV7_ERR_OOM;
    for (int i = 0; i < n_prompt && toks; i++) toks[i] = (int32_t)((i * 7919) % V);
    double tpp = 0, ttg = 0;
    for (int r = 0; r <= reps && st == RWKV7_OK; r++) {
        rwkv7_state_reset(ctx, 0);
        double t0 = now_ms();
        if (n_prompt > 0) st = rwkv7_ctx_eval(ctx, 1, &slot, n_prompt, toks, RWKV7_LOGITS_LAST, logits);
        double t1 = now_ms();
        int32_t tok = 1;
        for (int i = 0; i < n_gen && st == RWKV7_OK; i++) {
            st = rwkv7_ctx_eval(ctx, 1, &slot, 1, &tok, RWKV7_LOGITS_LAST, logits);
            tok = (int32_t)((tok * 31 + 7) % V);
        }
        double t2 = now_ms();
        if (r > 0) tpp += t1 - t0, ttg += t2 - t1;
    }
    *pp = n_prompt > 0 && tpp > 0 ? 1000.0 * n_prompt * reps / tpp : 0;
    *tg = n_gen > 0 && ttg > 0 ? 1000.0 * n_gen * reps / ttg : 0;
    free(toks);
    free(logits);
    rwkv7_ctx_free(ctx);
    return st;
}

static void print_rows(FILE *f, enum bench_format fmt, const char *model, const struct qrow *r, int n) {
    if (fmt == BENCH_MD) {
        fprintf(f, "| model | type | size MiB | bpw | pp t/s | tg t/s | PPL | mean KLD | 99.9%% KLD | same top-1 %% |\n");
        fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < n; i++)
            fprintf(f, "| %s | %s | %.2f | %.3f | %.1f | %.1f | %.4f | %.6f | %.6f | %.2f |\n", model, r[i].type,
                    (double)r[i].size / 1048576.0, r[i].bpw, r[i].pp_ts, r[i].tg_ts, r[i].ppl, r[i].kld_mean, r[i].kld_999,
                    100 * r[i].same_top);
        return;
    }
    if (fmt == BENCH_CSV)
        fprintf(f, "\"model\",\"file_type\",\"model_size\",\"model_n_params\",\"bpw\",\"pp_ts\",\"tg_ts\",\"ppl\",\"kld_mean\",\"kld_999\",\"same_top1\"\n");
    if (fmt == BENCH_JSON) fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        if (fmt == BENCH_CSV) {
            fprintf(f, "\"%s\",\"%s\",\"%llu\",\"%llu\",\"%.4f\",\"%.3f\",\"%.3f\",\"%.6f\",\"%.8f\",\"%.8f\",\"%.6f\"\n", model,
                    r[i].type, (unsigned long long)r[i].size, (unsigned long long)r[i].n_params, r[i].bpw, r[i].pp_ts,
                    r[i].tg_ts, r[i].ppl, r[i].kld_mean, r[i].kld_999, r[i].same_top);
        } else {
            fprintf(f, "%s{\"model\": \"%s\", \"file_type\": \"%s\", \"model_size\": %llu, \"model_n_params\": %llu, "
                       "\"bpw\": %.4f, \"pp_ts\": %.3f, \"tg_ts\": %.3f, \"ppl\": %.6f, \"kld_mean\": %.8f, \"kld_999\": %.8f, "
                       "\"same_top1\": %.6f}%s\n",
                    fmt == BENCH_JSON ? "  " : "", model, r[i].type, (unsigned long long)r[i].size,
                    (unsigned long long)r[i].n_params, r[i].bpw, r[i].pp_ts, r[i].tg_ts, r[i].ppl, r[i].kld_mean,
                    r[i].kld_999, r[i].same_top, fmt == BENCH_JSON && i + 1 < n ? "," : "");
        }
    }
    if (fmt == BENCH_JSON) fprintf(f, "]\n");
}

/* Mean KLD (log scale) against bits per weight, each point labelled with its type and decode t/s. */
static bool write_plot(const char *path, const char *model, const struct qrow *r, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    const double W = 720, H = 480, L = 70, R = 30, T = 40, B = 50;
    double xmin = 1e9, xmax = 0, ymin = 1e9, ymax = -1e9;
    for (int i = 0; i < n; i++) {
        if (r[i].kld_mean <= 0) continue;
        xmin = fmin(xmin, r[i].bpw), xmax = fmax(xmax, r[i].bpw);
        ymin = fmin(ymin, log10(r[i].kld_mean)), ymax = fmax(ymax, log10(r[i].kld_mean));
    }
    if (xmax <= xmin) xmin -= 1, xmax += 1;
    ymin = floor(ymin), ymax = ceil(ymax);
    if (ymax <= ymin) ymax = ymin + 1;
    xmin = floor(xmin), xmax = ceil(xmax);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"20\" font-size=\"14\">%s: mean KL divergence vs bits per weight (labels: type, decode t/s)</text>\n", L, model);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, T, L, H - B);
#define PX(x) (L + ((x) - xmin) / (xmax - xmin) * (W - L - R))
#define PY(y) (H - B - ((y) - ymin) / (ymax - ymin) * (H - T - B))
    for (double y = ymin; y <= ymax + 1e-9; y += 1)
        fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n",
                L, PY(y), W - R, PY(y), L - 5, PY(y) + 4, (int)y);
    for (double x = xmin; x <= xmax + 1e-9; x += 1)
        fprintf(f, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n", PX(x), H - B + 16, x);
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">bits per weight</text>\n", (L + W - R) / 2, H - 12);
    for (int i = 0; i < n; i++) {
        if (r[i].kld_mean <= 0) continue;
        const double x = PX(r[i].bpw), y = PY(log10(r[i].kld_mean));
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/><text x=\"%.1f\" y=\"%.1f\">%s %.0f t/s</text>\n", x, y,
                x + 6, y - 6, r[i].type, r[i].tg_ts);
    }
#undef PX
#undef PY
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

int bench_quality(int argc, char **argv) {
    struct model_opts mo = {0};
    const char *synth = NULL, *types_s = "Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,IQ4_XS,IQ3_M,Q2_K", *text_path = NULL;
    const char *output = "md", *plot = NULL;
    int n_ctx = 128, n_chunk = 4, n_prompt = 64, n_gen = 16, reps = 2;
    uint64_t seed = 1234;
    bool quality = false;
    const struct opt opts[] = {
        {"--quality", OPT_FLAG, &quality, NULL, "speed and quality per file type (this mode)"},
        MODEL_OPTS(mo),
        {"--synthetic", OPT_STR, &synth, "SIZE", "base: a released geometry with random F16 weights (default 0.1B when no -m)"},
        {"--types", OPT_STR, &types_s, "LIST", "file types to quantize to (default Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,IQ4_XS,IQ3_M,Q2_K)"},
        {"-f,--file", OPT_STR, &text_path, "FILE", "text for PPL and KL (default: text the base model samples itself, fixed seed)"},
        {"-c,--ctx-size", OPT_INT, &n_ctx, "N", "tokens per chunk, second half scored (default 128)"},
        {"--chunks", OPT_INT, &n_chunk, "N", "chunks scored (default 4)"},
        {"-p,--n-prompt", OPT_INT, &n_prompt, "N", "prefill test tokens (default 64)"},
        {"-n,--n-gen", OPT_INT, &n_gen, "N", "decode test tokens (default 16)"},
        {"-r,--repetitions", OPT_INT, &reps, "N", "timed repetitions after a warm-up (default 2)"},
        {"-o,--output", OPT_STR, &output, "FMT", "md | csv | json | jsonl (default md)"},
        {"--plot", OPT_STR, &plot, "FILE.svg", "mean KLD (log scale) against bits per weight, labelled with decode t/s"},
        {"--seed", OPT_U64, &seed, "SEED", "seed of the synthetic weights and of the sampled text (default 1234)"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("bench", "--quality [-m BASE.gguf | --synthetic SIZE] [--types LIST] [-f TEXT] [-o FMT] [--plot F.svg]",
                        opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    enum bench_format fmt;
    if (!bench_format_parse(output, &fmt)) {
        fprintf(stderr, "rwkv7 bench: unknown output format '%s' (md, csv, json, jsonl)\n", output);
        return 2;
    }
    if (n_ctx < 4 || n_chunk < 1 || n_prompt < 0 || n_gen < 0 || reps < 1) {
        fprintf(stderr, "rwkv7 bench: --quality needs -c >= 4, --chunks >= 1, -r >= 1\n");
        return 2;
    }
    if (mo.model && synth) {
        fprintf(stderr, "rwkv7 bench: give -m or --synthetic, not both\n");
        return 2;
    }
    /* the file types, checked before any work */
    const struct bench_ftype *fts[64];
    int n_ft = 0;
    char *tl = strdup(types_s);
    for (char *tok = strtok(tl, ","); tok && n_ft < 64; tok = strtok(NULL, ",")) {
        const struct bench_ftype *ft = bench_ftype_find(tok);
        if (!ft || !rwkv7_quantize_supported(ft->body) || !rwkv7_quantize_supported(ft->embd) ||
            !rwkv7_quantize_supported(ft->output) || ft->body == RWKV7_DTYPE_IQ2_XXS) {
            fprintf(stderr, "rwkv7 bench: cannot quantize to file type '%s'\n", tok);
            free(tl);
            return 2;
        }
        fts[n_ft++] = ft;
    }
    free(tl);
    /* the base */
    struct rwkv7_gguf *g = NULL;
    void *img = NULL;
    size_t img_size = 0;
    char label[128];
    enum rwkv7_status st;
    if (mo.model) {
        st = rwkv7_gguf_open(mo.model, &g);
        const char *slash = strrchr(mo.model, '/');
        snprintf(label, sizeof label, "%s", slash ? slash + 1 : mo.model);
    } else {
        const struct bench_geometry *geo = bench_geometry_find(synth ? synth : "0.1B");
        if (!geo) {
            fprintf(stderr, "rwkv7 bench: unknown geometry '%s'\n", synth);
            return 2;
        }
        snprintf(label, sizeof label, "rwkv7 %s synthetic", geo->name);
        st = bench_synth_image(geo, bench_ftype_find("F16"), seed, rwkv7_n_physical_cores(), &img, &img_size);
        if (st == RWKV7_OK) st = rwkv7_gguf_open_memory(img, img_size, &g);
    }
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 bench: cannot open the base model: %s\n", rwkv7_last_error());
        free(img);
        return host_status_exit(st);
    }
    struct rwkv7_model_params mp = {mo.backend, mo.device, mo.threads, false, true};
    struct rwkv7_model *base = NULL;
    st = rwkv7_model_load_memory(rwkv7_gguf_base(g), (size_t)rwkv7_gguf_file_size(g), &mp, &base);
    const int V = st == RWKV7_OK ? rwkv7_model_hparams(base)->n_vocab : 0;
    int32_t *toks = NULL;
    float *base_lp = NULL;
    struct qrow *rows = calloc((size_t)n_ft + 1, sizeof *rows);
    struct qtext text = {NULL, n_chunk, n_ctx, n_chunk < 8 ? n_chunk : 8};
    if (st == RWKV7_OK && text_path) {
        size_t n = 0, nt = 0;
        char *t = read_text_file(text_path, &n);
        int32_t *ids = t ? host_tokenize("bench", rwkv7_model_tokenizer(base), t, n, &nt) : NULL;
        free(t);
        if (!ids || nt < 2 * (size_t)n_ctx) {
            if (ids) fprintf(stderr, "rwkv7 bench: the text has %zu tokens; a context of %d needs at least %d\n", nt, n_ctx, 2 * n_ctx);
            free(ids);
            rc = 2;
            goto done;
        }
        if ((size_t)n_chunk > nt / (size_t)n_ctx) text.n_chunk = (int)(nt / (size_t)n_ctx);
        toks = ids;
    } else if (st == RWKV7_OK) {
        toks = malloc((size_t)n_chunk * n_ctx * sizeof *toks);
        fprintf(stderr, "bench: sampling %d x %d tokens of text from the base model (seed %llu)\n", n_chunk, n_ctx,
                (unsigned long long)seed);
        st = toks ? sample_text(base, n_chunk, n_ctx, seed, toks) : RWKV7_ERR_OOM;
    }
    text.toks = toks;
    const size_t n_rows_lp = (size_t)text.n_chunk * (n_ctx - 1 - n_ctx / 2) * V;
    if (st == RWKV7_OK) base_lp = malloc(n_rows_lp * sizeof(float));
    if (st == RWKV7_OK && !base_lp) st = RWKV7_ERR_OOM;
    struct ppl_acc pa = {0};
    if (st == RWKV7_OK) st = eval_text(base, &text, base_lp, NULL, NULL, &pa);
    uint32_t base_ft = 0;
    rwkv7_gguf_get_u32(g, "general.file_type", &base_ft);
    if (st == RWKV7_OK) {
        struct qrow *r = &rows[0];
        snprintf(r->type, sizeof r->type, "base (%s)", base_ft == 0 ? "F32" : base_ft == 1 ? "F16" : base_ft == 32 ? "BF16" : "?");
        r->size = rwkv7_model_weight_bytes(base);
        r->n_params = rwkv7_model_n_params(base);
        r->bpw = 8.0 * (double)r->size / (double)r->n_params;
        r->ppl = ppl_value(&pa), r->same_top = 1.0;
        fprintf(stderr, "bench: %s\n", r->type);
        st = time_model(base, n_prompt, n_gen, reps, &r->pp_ts, &r->tg_ts);
    }
    rwkv7_model_free(base);
    base = NULL;
    int n_rows = 1;
    for (int i = 0; i < n_ft && st == RWKV7_OK; i++) {
        fprintf(stderr, "bench: %s\n", fts[i]->name);
        struct quant_model_opts qo = {fts[i], mo.threads > 0 ? mo.threads : rwkv7_n_physical_cores(), true, false};
        struct quant_model *q = NULL;
        void *qimg = NULL;
        size_t qsize = 0;
        struct rwkv7_model *m = NULL;
        st = quant_model_build(g, &qo, &q);
        if (st == RWKV7_OK) st = rwkv7_gguf_writer_write_memory(q->w, &qimg, &qsize);
        quant_model_free(q);
        if (st == RWKV7_OK) st = rwkv7_model_load_memory(qimg, qsize, &mp, &m);
        struct qrow *r = &rows[n_rows];
        struct kld_acc ka = {0};
        if (st == RWKV7_OK) st = eval_text(m, &text, NULL, base_lp, &ka, NULL);
        if (st == RWKV7_OK) {
            struct kld_summary s;
            kld_summarize(&ka, &s);
            snprintf(r->type, sizeof r->type, "%s", fts[i]->name);
            r->size = rwkv7_model_weight_bytes(m);
            r->n_params = rwkv7_model_n_params(m);
            r->bpw = 8.0 * (double)r->size / (double)r->n_params;
            r->ppl = s.ppl_q, r->kld_mean = s.kld_mean, r->kld_999 = s.kld_999, r->same_top = s.same_top;
            st = time_model(m, n_prompt, n_gen, reps, &r->pp_ts, &r->tg_ts);
            n_rows++;
        }
        kld_acc_free(&ka);
        rwkv7_model_free(m);
        free(qimg);
    }
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 bench: %s\n", rwkv7_last_error());
        rc = host_status_exit(st);
        goto done;
    }
    print_rows(stdout, fmt, label, rows, n_rows);
    if (plot && !write_plot(plot, label, rows, n_rows)) {
        fprintf(stderr, "rwkv7 bench: cannot write '%s'\n", plot);
        rc = 2;
    }
done:
    rwkv7_model_free(base);
    free(rows);
    free(toks);
    free(base_lp);
    rwkv7_gguf_free(g);
    free(img);
    return rc;
}
