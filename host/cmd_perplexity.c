/* cmd_perplexity.c: `rwkv7 perplexity`: llama-perplexity's measurement for RWKV-7. The text is cut
 * into chunks of CTX tokens, each evaluated from a fresh (zero) state; only the second half of a
 * chunk is scored (row j predicts token j + 1 for j in [CTX/2, CTX - 1)), so every scored token has
 * at least CTX/2 tokens of context, exactly as llama-perplexity does without --ppl-stride. Several
 * chunks run together as the sequences of one batched call. --kl-divergence-base saves the scored
 * rows' log-probabilities (docs/perplexity.md); --kl-divergence compares another model with them
 * and prints llama-perplexity's statistics. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "commands.h"
#include "ppl_stats.h"

#define KLD_MAGIC "rwkv7kld"
#define KLD_VERSION 1u
/* Logits held per batched call, so a 65,536-token vocabulary with many chunks stays in memory. */
#define LOGITS_BUDGET (16u << 20)

struct base_file {
    FILE *f;
    char *tmp;             /* temporary path while writing; renamed at the end */
    uint32_t n_vocab, n_ctx, n_chunk, n_scored, n_tokens;
    long long data_off;    /* where row 0 starts */
};

static long long row_offset(const struct base_file *b, int chunk, int j) {
    return b->data_off + ((long long)chunk * b->n_scored + j) * (4 + 2 * (long long)b->n_vocab);
}

static int put_u32(FILE *f, uint32_t v) {
    uint8_t o[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return fwrite(o, 1, 4, f) == 4 ? 0 : -1;
}

static int get_u32(FILE *f, uint32_t *v) {
    uint8_t o[4];
    if (fread(o, 1, 4, f) != 4) return -1;
    *v = (uint32_t)o[0] | (uint32_t)o[1] << 8 | (uint32_t)o[2] << 16 | (uint32_t)o[3] << 24;
    return 0;
}

/* Reads the header and tokens of a base file; prints the error. */
static int32_t *base_open(const char *path, struct base_file *b) {
    memset(b, 0, sizeof *b);
    b->f = fopen(path, "rb");
    if (!b->f) {
        fprintf(stderr, "rwkv7 perplexity: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    char magic[8];
    uint32_t ver = 0;
    if (fread(magic, 1, 8, b->f) != 8 || memcmp(magic, KLD_MAGIC, 8) || get_u32(b->f, &ver) || ver != KLD_VERSION ||
        get_u32(b->f, &b->n_vocab) || get_u32(b->f, &b->n_ctx) || get_u32(b->f, &b->n_chunk) ||
        get_u32(b->f, &b->n_scored) || get_u32(b->f, &b->n_tokens) || b->n_vocab == 0 || b->n_ctx < 4 ||
        b->n_scored != b->n_ctx - 1 - b->n_ctx / 2 || b->n_tokens < (uint64_t)b->n_chunk * b->n_ctx ||
        b->n_tokens > (1u << 30)) {
        fprintf(stderr, "rwkv7 perplexity: '%s' is not a version %u rwkv7 log-probability file\n", path, KLD_VERSION);
        return NULL;
    }
    int32_t *toks = malloc((size_t)b->n_tokens * sizeof *toks);
    uint8_t *raw = malloc((size_t)b->n_tokens * 4);
    if (!toks || !raw || fread(raw, 4, b->n_tokens, b->f) != b->n_tokens) {
        fprintf(stderr, "rwkv7 perplexity: '%s' is truncated\n", path);
        free(toks);
        free(raw);
        return NULL;
    }
    for (uint32_t i = 0; i < b->n_tokens; i++)
        toks[i] = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 | (uint32_t)raw[4 * i + 2] << 16 |
                            (uint32_t)raw[4 * i + 3] << 24);
    free(raw);
    b->data_off = 8 + 4 * 7 + 4LL * b->n_tokens;
    if (fseeko(b->f, 0, SEEK_END) || ftello(b->f) != row_offset(b, (int)b->n_chunk, 0)) {
        fprintf(stderr, "rwkv7 perplexity: '%s' has the wrong size for %u chunks of %u rows\n", path, b->n_chunk, b->n_scored);
        free(toks);
        return NULL;
    }
    return toks;
}

static int base_create(const char *path, struct base_file *b, const int32_t *toks) {
    size_t n = strlen(path) + 32;
    b->tmp = malloc(n);
    if (!b->tmp) return -1;
    snprintf(b->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    b->f = fopen(b->tmp, "wb+");
    if (!b->f) {
        fprintf(stderr, "rwkv7 perplexity: cannot create '%s': %s\n", b->tmp, strerror(errno));
        return -1;
    }
    int bad = fwrite(KLD_MAGIC, 1, 8, b->f) != 8;
    bad |= put_u32(b->f, KLD_VERSION) | put_u32(b->f, b->n_vocab) | put_u32(b->f, b->n_ctx) |
           put_u32(b->f, b->n_chunk) | put_u32(b->f, b->n_scored) | put_u32(b->f, b->n_tokens);
    for (uint32_t i = 0; i < b->n_tokens && !bad; i++) bad |= put_u32(b->f, (uint32_t)toks[i]);
    b->data_off = 8 + 4 * 7 + 4LL * b->n_tokens;
    return bad ? -1 : 0;
}

struct run {
    const int32_t *toks;
    int n_ctx, first, n_scored, V;
    struct base_file *base;
    bool save, kld;
    struct ppl_acc *chunk_acc; /* per chunk, for the running estimate */
    struct kld_acc kacc;
    double *lp, *lp_base;
    uint16_t *codes;
};

/* Scores one logits row: row j of chunk c. */
static int score_row(struct run *r, int c, int j, const float *logits) {
    const int tok = r->toks[(size_t)c * r->n_ctx + j + 1];
    ppl_log_softmax(logits, r->V, r->lp);
    ppl_acc_add(&r->chunk_acc[c], r->lp[tok]);
    const int row = j - r->first;
    if (r->save) {
        float lmin;
        uint32_t u;
        ppl_row_encode(r->lp, r->V, &lmin, r->codes);
        memcpy(&u, &lmin, 4);
        const uint8_t h[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        if (fseeko(r->base->f, row_offset(r->base, c, row), SEEK_SET) || fwrite(h, 1, 4, r->base->f) != 4 ||
            fwrite(r->codes, 2, (size_t)r->V, r->base->f) != (size_t)r->V)
            return -1;
    }
    if (r->kld) {
        uint8_t h[4];
        if (fseeko(r->base->f, row_offset(r->base, c, row), SEEK_SET) || fread(h, 1, 4, r->base->f) != 4 ||
            fread(r->codes, 2, (size_t)r->V, r->base->f) != (size_t)r->V)
            return -1;
        const uint32_t u = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        float lmin;
        memcpy(&lmin, &u, 4);
        if (!(lmin <= 0.0f && lmin >= -PPL_LP_RANGE)) return -1;
        ppl_row_decode(lmin, r->codes, r->V, r->lp_base);
        if (kld_acc_add(&r->kacc, r->lp_base, r->lp, r->V, tok)) return -2;
    }
    return 0;
}

/* Plain perplexity scores the rows of a step on all threads: a 65,536-entry log-sum-exp per
 * scored token would otherwise cost a third of the model's own time on a CPU. */
struct score_job {
    const float *logits;
    const int32_t *tok; /* next token per row */
    double *lp;         /* out: log p per row */
    int V, n_rows, n_threads, index;
};

static void *score_worker(void *arg) {
    struct score_job *j = arg;
    for (int r = j->index; r < j->n_rows; r += j->n_threads)
        j->lp[r] = ppl_row_logprob(j->logits + (size_t)r * j->V, j->V, j->tok[r]);
    return NULL;
}

static void score_rows(const float *logits, const int32_t *tok, double *lp, int V, int n_rows, int n_threads) {
    struct score_job jobs[64];
    pthread_t th[64];
    if (n_threads > 64) n_threads = 64;
    if (n_threads > n_rows) n_threads = n_rows;
    int started = 0;
    for (int i = 0; i < n_threads; i++) jobs[i] = (struct score_job){logits, tok, lp, V, n_rows, n_threads, i};
    for (int i = 1; i < n_threads; i++)
        if (pthread_create(&th[started], NULL, score_worker, &jobs[i]) == 0) started++;
        else score_worker(&jobs[i]);
    score_worker(&jobs[0]);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}

static void print_kld(const struct kld_summary *s) {
    printf("\n====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s->ppl_q, s->ppl_q_err);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s->ppl_base, s->ppl_base_err);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * s->cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s->ln_ratio, s->ln_ratio_err);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s->ratio, s->ratio_err);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s->diff, s->diff_err);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %12.8f ± %12.8f\n", s->kld_mean, s->kld_err);
    printf("Maximum KLD: %12.8f\n99.9%%   KLD: %12.8f\n99.0%%   KLD: %12.8f\n90.0%%   KLD: %12.8f\n", s->kld_max, s->kld_999,
           s->kld_99, s->kld_90);
    printf("Median  KLD: %12.8f\n10.0%%   KLD: %12.8f\n 5.0%%   KLD: %12.8f\n 1.0%%   KLD: %12.8f\nMinimum KLD: %12.8f\n",
           s->kld_median, s->kld_10, s->kld_5, s->kld_1, s->kld_min);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %8.3f ± %5.3f %%\n", 100 * s->dp_mean, 100 * s->dp_err);
    printf("Maximum Δp: %8.3f%%\n99.9%%   Δp: %8.3f%%\n99.0%%   Δp: %8.3f%%\n95.0%%   Δp: %8.3f%%\n90.0%%   Δp: %8.3f%%\n",
           100 * s->dp_max, 100 * s->dp_999, 100 * s->dp_99, 100 * s->dp_95, 100 * s->dp_90);
    printf("75.0%%   Δp: %8.3f%%\nMedian  Δp: %8.3f%%\n25.0%%   Δp: %8.3f%%\n10.0%%   Δp: %8.3f%%\n 5.0%%   Δp: %8.3f%%\n",
           100 * s->dp_75, 100 * s->dp_median, 100 * s->dp_25, 100 * s->dp_10, 100 * s->dp_5);
    printf(" 1.0%%   Δp: %8.3f%%\n 0.1%%   Δp: %8.3f%%\nMinimum Δp: %8.3f%%\n", 100 * s->dp_1, 100 * s->dp_001, 100 * s->dp_min);
    printf("RMS Δp    : %8.3f ± %5.3f %%\n", 100 * s->dp_rms, 100 * s->dp_rms_err);
    printf("Same top p: %8.3f ± %5.3f %%\n", 100 * s->same_top, 100 * s->same_top_err);
}

int cmd_perplexity(int argc, char **argv) {
    struct model_opts mo = {0};
    const char *text_path = NULL, *base_path = NULL;
    int n_ctx = 512, max_chunks = -1, n_par = 4;
    bool kld = false;
    const struct opt opts[] = {
        MODEL_OPTS(mo),
        {"-f,--file", OPT_STR, &text_path, "FILE", "text to score (required unless --kl-divergence, which takes the tokens from the base file)"},
        {"-c,--ctx-size", OPT_INT, &n_ctx, "N", "tokens per chunk; the second half of each is scored (default 512)"},
        {"--chunks", OPT_INT, &max_chunks, "N", "score at most N chunks; -1 = all (default -1)"},
        {"-np,--parallel", OPT_INT, &n_par, "N", "chunks evaluated together as the sequences of one batch (default 4)"},
        {"--kl-divergence-base", OPT_STR, &base_path, "FILE", "save the scored log-probabilities here (or, with --kl-divergence, read them)"},
        {"--kl-divergence", OPT_FLAG, &kld, NULL, "compare with the log-probabilities in --kl-divergence-base: KLD, Δp, same top-1"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    const char *syn = "-m FILE -f TEXT [-c CTX] [--chunks N] [-np N] [--kl-divergence-base FILE [--kl-divergence]]";
    int rc = args_parse("perplexity", syn, opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if (kld && !base_path) {
        fprintf(stderr, "rwkv7 perplexity: --kl-divergence needs --kl-divergence-base FILE\n");
        return 2;
    }
    if (!kld && !text_path) {
        fprintf(stderr, "rwkv7 perplexity: no text given (-f FILE)\n");
        return 2;
    }
    if (n_par < 1) n_par = 1;
    struct base_file base = {0};
    int32_t *toks = NULL;
    size_t n_toks = 0;
    if (kld) {
        toks = base_open(base_path, &base);
        if (!toks) {
            if (base.f) fclose(base.f);
            return 2;
        }
        n_toks = base.n_tokens;
        n_ctx = (int)base.n_ctx;
    }
    if (n_ctx < 4) {
        fprintf(stderr, "rwkv7 perplexity: context %d is too small (at least 4)\n", n_ctx);
        free(toks);
        return 2;
    }
    struct rwkv7_model *model = NULL;
    rc = host_load_model("perplexity", &mo, false, &model);
    if (rc) {
        free(toks);
        if (base.f) fclose(base.f);
        return rc;
    }
    const int V = rwkv7_model_hparams(model)->n_vocab;
    if (kld && base.n_vocab != (uint32_t)V) {
        fprintf(stderr, "rwkv7 perplexity: '%s' was saved with a vocabulary of %u tokens, the model has %d\n", base_path,
                base.n_vocab, V);
        rc = 2;
        goto done;
    }
    if (text_path) {
        size_t n_text = 0;
        char *text = read_text_file(text_path, &n_text);
        if (!text) {
            rc = 2;
            goto done;
        }
        size_t nt = 0;
        int32_t *t = host_tokenize("perplexity", rwkv7_model_tokenizer(model), text, n_text, &nt);
        free(text);
        if (!t) {
            rc = 2;
            goto done;
        }
        if (kld && (nt < n_toks || memcmp(t, toks, n_toks * sizeof *t))) {
            fprintf(stderr, "rwkv7 perplexity: the text's tokens differ from those saved in '%s'\n", base_path);
            free(t);
            rc = 2;
            goto done;
        }
        if (kld) {
            free(t);
        } else {
            toks = t;
            n_toks = nt;
        }
    }
    if (n_toks < 2 * (size_t)n_ctx) {
        fprintf(stderr, "rwkv7 perplexity: the text has %zu tokens; a context of %d needs at least %d\n", n_toks, n_ctx,
                2 * n_ctx);
        rc = 2;
        goto done;
    }
    int n_chunk = (int)(n_toks / (size_t)n_ctx);
    if (kld && (int)base.n_chunk < n_chunk) n_chunk = (int)base.n_chunk;
    if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    if (n_par > n_chunk) n_par = n_chunk;
    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    if (base_path && !kld) {
        base.n_vocab = (uint32_t)V, base.n_ctx = (uint32_t)n_ctx, base.n_chunk = (uint32_t)n_chunk;
        base.n_scored = (uint32_t)n_scored, base.n_tokens = (uint32_t)((size_t)n_chunk * n_ctx);
        if (base_create(base_path, &base, toks)) {
            fprintf(stderr, "rwkv7 perplexity: cannot write '%s'\n", base_path);
            rc = 2;
            goto done;
        }
    }
    struct run r = {.toks = toks, .n_ctx = n_ctx, .first = first, .n_scored = n_scored, .V = V, .base = &base,
                    .save = base_path && !kld, .kld = kld};
    r.chunk_acc = calloc((size_t)n_chunk, sizeof *r.chunk_acc);
    r.lp = malloc((size_t)V * sizeof(double));
    r.lp_base = malloc((size_t)V * sizeof(double));
    r.codes = malloc((size_t)V * sizeof(uint16_t));
    int S = (int)(LOGITS_BUDGET / ((size_t)n_par * (size_t)V));
    if (S < 1) S = 1;
    if (S > n_scored) S = n_scored;
    float *logits = malloc((size_t)n_par * (size_t)S * (size_t)V * sizeof(float));
    int32_t *tb = malloc((size_t)n_par * (size_t)(first > S ? first : S) * sizeof *tb);
    int *slots = malloc((size_t)n_par * sizeof *slots);
    int32_t *next = malloc((size_t)n_par * (size_t)S * sizeof *next);
    double *row_lp = malloc((size_t)n_par * (size_t)S * sizeof *row_lp);
    const int n_threads = mo.threads > 0 ? mo.threads : rwkv7_n_physical_cores();
    struct rwkv7_ctx *ctx = NULL;
    enum rwkv7_status st = RWKV7_ERR_OOM;
    if (r.chunk_acc && r.lp && r.lp_base && r.codes && logits && tb && slots && next && row_lp) st = rwkv7_ctx_init(model, n_par, &ctx);
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7 perplexity: %s\n", st == RWKV7_ERR_OOM && !ctx ? "out of memory" : rwkv7_last_error());
        rc = host_status_exit(st);
        goto free_run;
    }
    fprintf(stderr, "perplexity: %zu tokens, %d chunks of %d (%d scored each), %d chunks per batch, %s\n", n_toks, n_chunk,
            n_ctx, n_scored, n_par, rwkv7_model_backend_name(model));
    const double t0 = now_ms();
    struct ppl_acc total = {0};
    for (int g = 0; g < n_chunk && rc == 0; g += n_par) {
        const int nb = n_chunk - g < n_par ? n_chunk - g : n_par;
        for (int s = 0; s < nb; s++) slots[s] = s, rwkv7_state_reset(ctx, s);
        /* unscored first half: no logits */
        for (int s = 0; s < nb; s++) memcpy(tb + (size_t)s * first, toks + (size_t)(g + s) * n_ctx, (size_t)first * sizeof *tb);
        st = rwkv7_ctx_eval(ctx, nb, slots, first, tb, RWKV7_LOGITS_NONE, NULL);
        for (int p0 = first; p0 < n_ctx - 1 && st == RWKV7_OK && rc == 0; p0 += S) {
            const int ns = n_ctx - 1 - p0 < S ? n_ctx - 1 - p0 : S;
            for (int s = 0; s < nb; s++)
                memcpy(tb + (size_t)s * ns, toks + (size_t)(g + s) * n_ctx + p0, (size_t)ns * sizeof *tb);
            st = rwkv7_ctx_eval(ctx, nb, slots, ns, tb, RWKV7_LOGITS_ALL, logits);
            if (st == RWKV7_OK && !r.save && !r.kld) {
                for (int s = 0; s < nb; s++)
                    for (int j = 0; j < ns; j++) next[s * ns + j] = toks[(size_t)(g + s) * n_ctx + p0 + j + 1];
                score_rows(logits, next, row_lp, V, nb * ns, n_threads);
                for (int s = 0; s < nb; s++)
                    for (int j = 0; j < ns; j++) ppl_acc_add(&r.chunk_acc[g + s], row_lp[s * ns + j]);
                continue;
            }
            for (int s = 0; s < nb && st == RWKV7_OK; s++)
                for (int j = 0; j < ns; j++) {
                    int e = score_row(&r, g + s, p0 + j, logits + ((size_t)s * ns + j) * V);
                    if (e) {
                        fprintf(stderr, "rwkv7 perplexity: %s '%s'\n", e == -2 ? "out of memory for" : "cannot access", base_path);
                        rc = e == -2 ? 1 : 2;
                        break;
                    }
                }
        }
        if (st != RWKV7_OK) {
            fprintf(stderr, "rwkv7 perplexity: %s\n", rwkv7_last_error());
            rc = host_status_exit(st);
            break;
        }
        for (int s = 0; s < nb && rc == 0; s++) {
            const struct ppl_acc *c = &r.chunk_acc[g + s];
            total.nll += c->nll, total.nll2 += c->nll2, total.n += c->n;
            printf("[%d]%.4f,", g + s + 1, ppl_value(&total));
        }
        fflush(stdout);
        if (g == 0 && rc == 0) {
            const double per = (now_ms() - t0) / 1000.0;
            fprintf(stderr, "perplexity: %.2f seconds per batch of %d chunks - ETA %.2f minutes\n", per, nb,
                    per * (double)((n_chunk - nb + n_par - 1) / n_par) / 60.0);
        }
    }
    if (rc == 0) {
        const double secs = (now_ms() - t0) / 1000.0;
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl_value(&total), ppl_error(&total));
        fprintf(stderr, "perplexity: %d tokens evaluated in %.2f s (%.1f tokens/s), %lld scored\n", n_chunk * n_ctx, secs,
                (double)n_chunk * n_ctx / (secs > 0 ? secs : 1e-9), (long long)total.n);
        if (kld) {
            struct kld_summary sum;
            kld_summarize(&r.kacc, &sum);
            print_kld(&sum);
        }
        if (r.save) {
            int bad = fflush(base.f) != 0 || fsync(fileno(base.f)) != 0;
            bad |= fclose(base.f) != 0;
            base.f = NULL;
            if (bad || rename(base.tmp, base_path) != 0) {
                fprintf(stderr, "rwkv7 perplexity: cannot write '%s': %s\n", base_path, strerror(errno));
                rc = 2;
            } else {
                fprintf(stderr, "perplexity: saved the log-probabilities of %lld tokens to %s\n", (long long)total.n, base_path);
            }
        }
    }
free_run:
    rwkv7_ctx_free(ctx);
    free(logits);
    free(tb);
    free(slots);
    free(next);
    free(row_lp);
    free(r.chunk_acc);
    free(r.lp);
    free(r.lp_base);
    free(r.codes);
    kld_acc_free(&r.kacc);
done:
    if (base.f) fclose(base.f);
    if (base.tmp) {
        if (rc) unlink(base.tmp);
        free(base.tmp);
    }
    free(toks);
    rwkv7_model_free(model);
    return rc;
}
