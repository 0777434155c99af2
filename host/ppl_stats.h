/* ppl_stats.h: the scoring arithmetic of `rwkv7 perplexity`, kept apart from the model loop so
 * tests can check it against a direct computation: log-softmax rows, the perplexity estimate and
 * its error as llama-perplexity computes them, the KL-divergence statistics of its
 * --kl-divergence mode, and the 16-bit log-probability rows of the base file
 * (docs/perplexity.md). Everything is accumulated in double. */
#ifndef RWKV7_HOST_PPL_STATS_H
#define RWKV7_HOST_PPL_STATS_H

#include <stddef.h>
#include <stdint.h>

/* log-softmax of one row of V logits into lp (double); returns the argmax. */
int ppl_log_softmax(const float *logits, int V, double *lp);

/* log p(tok) of one row of logits, without forming the other log-probabilities: single-precision
 * exponentials summed in double (relative error ~1e-7 in the log-sum-exp), the fast path of plain
 * perplexity runs. */
double ppl_row_logprob(const float *logits, int V, int tok);

/* Running perplexity: -log p of each scored token. */
struct ppl_acc {
    double nll, nll2; /* sums of -log p and its square */
    int64_t n;
};
void ppl_acc_add(struct ppl_acc *a, double logprob);
/* exp(mean nll), and the error llama-perplexity prints: ppl * sqrt(var(nll) / (n - 1)). */
double ppl_value(const struct ppl_acc *a);
double ppl_error(const struct ppl_acc *a);

/* Base rows: log-probabilities clipped to [-PPL_LP_RANGE, 0], stored as the row minimum (f32)
 * and u16 codes spanning [min, 0]: a step of at most 25 / 65535 = 3.8e-4 in log p. */
#define PPL_LP_RANGE 25.0
void ppl_row_encode(const double *lp, int V, float *lmin, uint16_t *codes);
/* Decodes a base row into normalised log-probabilities. Renormalising removes the mean shift of
 * the rounding; what remains changes one row's KL by about 0.5% at most, at random, so it averages
 * out of a mean over many tokens (tests/test_cli_perplexity.c measures both). */
void ppl_row_decode(float lmin, const uint16_t *codes, int V, double *lp);

/* KL statistics against a base, one entry per scored token. */
struct kld_acc {
    struct ppl_acc q, base;
    double sum_lq_lb;    /* sum of nll_q * nll_base, for the correlation */
    double *kld, *dp;    /* per token: KL(base || q) and p_q - p_base of the actual next token */
    int64_t n, cap;
    int64_t same_top;    /* tokens whose argmax agrees */
};
/* Adds one token: lp_base and lp_q are normalised log-probability rows, tok the next token. */
int kld_acc_add(struct kld_acc *a, const double *lp_base, const double *lp_q, int V, int tok);
void kld_acc_free(struct kld_acc *a);

struct kld_summary {
    double ppl_q, ppl_q_err, ppl_base, ppl_base_err;
    double cor;                          /* correlation of per-token ln p between the models */
    double ln_ratio, ln_ratio_err;       /* mean ln(PPL(Q)/PPL(base)) */
    double ratio, ratio_err;             /* PPL(Q)/PPL(base) */
    double diff, diff_err;               /* PPL(Q) - PPL(base) */
    double kld_mean, kld_err, kld_max, kld_999, kld_99, kld_90, kld_median, kld_10, kld_5, kld_1, kld_min;
    double dp_mean, dp_err, dp_max, dp_999, dp_99, dp_95, dp_90, dp_75, dp_median, dp_25, dp_10, dp_5, dp_1, dp_001,
        dp_min;
    double dp_rms, dp_rms_err;
    double same_top, same_top_err;       /* fraction */
    int64_t n;
};
/* Sorts the per-token arrays in place. */
void kld_summarize(struct kld_acc *a, struct kld_summary *s);
/* Value at fraction p of a sorted array, linear between neighbours (p = 0.5 is the median). */
double ppl_percentile(const double *sorted, int64_t n, double p);

#endif
