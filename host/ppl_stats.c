/* ppl_stats.c: see ppl_stats.h. Error bars follow llama-perplexity: the standard error of a mean
 * is sqrt(var / (n - 1)); ratio errors come from propagating the nll errors with the measured
 * covariance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ppl_stats.h"

int ppl_log_softmax(const float *logits, int V, double *lp) {
    int arg = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[arg]) arg = i;
    const double mx = logits[arg];
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum);
    for (int i = 0; i < V; i++) lp[i] = (double)logits[i] - lse;
    return arg;
}

double ppl_row_logprob(const float *logits, int V, int tok) {
    float mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += (double)expf(logits[i] - mx);
    return (double)(logits[tok] - mx) - log(sum);
}

void ppl_acc_add(struct ppl_acc *a, double logprob) {
    a->nll -= logprob;
    a->nll2 += logprob * logprob;
    a->n++;
}

double ppl_value(const struct ppl_acc *a) { return a->n ? exp(a->nll / (double)a->n) : NAN; }

double ppl_error(const struct ppl_acc *a) {
    if (a->n < 2) return 0.0;
    const double mean = a->nll / (double)a->n, var = a->nll2 / (double)a->n - mean * mean;
    return var > 0 ? ppl_value(a) * sqrt(var / (double)(a->n - 1)) : 0.0;
}

void ppl_row_encode(const double *lp, int V, float *lmin, uint16_t *codes) {
    double mn = 0.0;
    for (int i = 0; i < V; i++) mn = lp[i] < mn ? lp[i] : mn;
    if (mn < -PPL_LP_RANGE) mn = -PPL_LP_RANGE;
    *lmin = (float)mn;
    const double scale = *lmin < 0 ? 65535.0 / -(double)*lmin : 0.0;
    for (int i = 0; i < V; i++) {
        double v = (lp[i] - (double)*lmin) * scale;
        v = v < 0 ? 0 : v > 65535 ? 65535 : v;
        codes[i] = (uint16_t)(v + 0.5);
    }
}

void ppl_row_decode(float lmin, const uint16_t *codes, int V, double *lp) {
    const double step = -(double)lmin / 65535.0;
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < V; i++) {
        lp[i] = (double)lmin + step * codes[i];
        mx = lp[i] > mx ? lp[i] : mx;
    }
    for (int i = 0; i < V; i++) sum += exp(lp[i] - mx);
    const double lse = mx + log(sum);
    for (int i = 0; i < V; i++) lp[i] -= lse;
}

int kld_acc_add(struct kld_acc *a, const double *lp_base, const double *lp_q, int V, int tok) {
    if (a->n == a->cap) {
        int64_t cap = a->cap ? 2 * a->cap : 4096;
        double *k = realloc(a->kld, (size_t)cap * sizeof *k);
        if (!k) return -1;
        a->kld = k;
        double *d = realloc(a->dp, (size_t)cap * sizeof *d);
        if (!d) return -1;
        a->dp = d;
        a->cap = cap;
    }
    double kl = 0.0;
    int ab = 0, aq = 0;
    for (int i = 0; i < V; i++) {
        const double pb = exp(lp_base[i]);
        if (pb > 0) kl += pb * (lp_base[i] - lp_q[i]);
        if (lp_base[i] > lp_base[ab]) ab = i;
        if (lp_q[i] > lp_q[aq]) aq = i;
    }
    ppl_acc_add(&a->q, lp_q[tok]);
    ppl_acc_add(&a->base, lp_base[tok]);
    a->sum_lq_lb += lp_q[tok] * lp_base[tok];
    a->kld[a->n] = kl;
    a->dp[a->n] = exp(lp_q[tok]) - exp(lp_base[tok]);
    a->same_top += ab == aq;
    a->n++;
    return 0;
}

void kld_acc_free(struct kld_acc *a) {
    free(a->kld);
    free(a->dp);
    memset(a, 0, sizeof *a);
}

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double ppl_percentile(const double *sorted, int64_t n, double p) {
    if (n <= 0) return NAN;
    const double pos = p * (double)(n - 1);
    const int64_t lo = (int64_t)floor(pos);
    if (lo >= n - 1) return sorted[n - 1];
    const double f = pos - (double)lo;
    return sorted[lo] + f * (sorted[lo + 1] - sorted[lo]);
}

/* mean and its standard error sqrt(var / (n - 1)) */
static void mean_err(const double *v, int64_t n, double *mean, double *err) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += v[i], s2 += v[i] * v[i];
    *mean = n ? s / (double)n : NAN;
    const double var = n ? s2 / (double)n - *mean * *mean : 0;
    *err = n > 1 && var > 0 ? sqrt(var / (double)(n - 1)) : 0.0;
}

void kld_summarize(struct kld_acc *a, struct kld_summary *s) {
    memset(s, 0, sizeof *s);
    const int64_t n = a->n;
    s->n = n;
    if (n == 0) return;
    s->ppl_q = ppl_value(&a->q), s->ppl_q_err = ppl_error(&a->q);
    s->ppl_base = ppl_value(&a->base), s->ppl_base_err = ppl_error(&a->base);
    /* per-token nll means, variances and covariance */
    const double mq = a->q.nll / (double)n, mb = a->base.nll / (double)n;
    const double vq = a->q.nll2 / (double)n - mq * mq, vb = a->base.nll2 / (double)n - mb * mb;
    const double cov = a->sum_lq_lb / (double)n - mq * mb;
    s->cor = vq > 0 && vb > 0 ? cov / sqrt(vq * vb) : 1.0;
    s->ln_ratio = mq - mb;
    const double var_diff = vq + vb - 2 * cov;
    s->ln_ratio_err = n > 1 && var_diff > 0 ? sqrt(var_diff / (double)(n - 1)) : 0.0;
    s->ratio = exp(s->ln_ratio);
    s->ratio_err = s->ratio * s->ln_ratio_err;
    s->diff = s->ppl_q - s->ppl_base;
    const double var_pd = s->ppl_q * s->ppl_q * vq + s->ppl_base * s->ppl_base * vb - 2 * s->ppl_q * s->ppl_base * cov;
    s->diff_err = n > 1 && var_pd > 0 ? sqrt(var_pd / (double)(n - 1)) : 0.0;
    mean_err(a->kld, n, &s->kld_mean, &s->kld_err);
    mean_err(a->dp, n, &s->dp_mean, &s->dp_err);
    double sq = 0, sq2 = 0;
    for (int64_t i = 0; i < n; i++) sq += a->dp[i] * a->dp[i], sq2 += a->dp[i] * a->dp[i] * a->dp[i] * a->dp[i];
    const double msq = sq / (double)n, var_sq = sq2 / (double)n - msq * msq;
    s->dp_rms = sqrt(msq);
    /* error of sqrt(mean) from the error of the mean of squares */
    s->dp_rms_err = n > 1 && var_sq > 0 && msq > 0 ? 0.5 / s->dp_rms * sqrt(var_sq / (double)(n - 1)) : 0.0;
    s->same_top = (double)a->same_top / (double)n;
    s->same_top_err = n > 1 ? sqrt(s->same_top * (1 - s->same_top) / (double)(n - 1)) : 0.0;
    qsort(a->kld, (size_t)n, sizeof(double), cmp_double);
    qsort(a->dp, (size_t)n, sizeof(double), cmp_double);
    const double *k = a->kld, *d = a->dp;
    s->kld_max = k[n - 1], s->kld_min = k[0];
    s->kld_999 = ppl_percentile(k, n, 0.999), s->kld_99 = ppl_percentile(k, n, 0.99);
    s->kld_90 = ppl_percentile(k, n, 0.90), s->kld_median = ppl_percentile(k, n, 0.5);
    s->kld_10 = ppl_percentile(k, n, 0.10), s->kld_5 = ppl_percentile(k, n, 0.05), s->kld_1 = ppl_percentile(k, n, 0.01);
    s->dp_max = d[n - 1], s->dp_min = d[0];
    s->dp_999 = ppl_percentile(d, n, 0.999), s->dp_99 = ppl_percentile(d, n, 0.99), s->dp_95 = ppl_percentile(d, n, 0.95);
    s->dp_90 = ppl_percentile(d, n, 0.90), s->dp_75 = ppl_percentile(d, n, 0.75), s->dp_median = ppl_percentile(d, n, 0.5);
    s->dp_25 = ppl_percentile(d, n, 0.25), s->dp_10 = ppl_percentile(d, n, 0.10), s->dp_5 = ppl_percentile(d, n, 0.05);
    s->dp_1 = ppl_percentile(d, n, 0.01), s->dp_001 = ppl_percentile(d, n, 0.001);
}
