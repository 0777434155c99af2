/* bench_out.h: results of `rwkv7 bench` and their output formats: the llama-bench markdown table
 * plus our columns, CSV (every value quoted), JSON (one array) and JSONL, with llama-bench's field
 * names where they apply (ecosystem.md 2.3), and the SVG bar chart of --plot. */
#ifndef RWKV7_HOST_BENCH_OUT_H
#define RWKV7_HOST_BENCH_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum bench_format { BENCH_MD, BENCH_CSV, BENCH_JSON, BENCH_JSONL };

struct bench_record {
    char model_filename[512];
    char model_type[96];  /* "rwkv7 0.1B Q4_K_M" */
    char cpu_info[128];
    char gpu_info[256];   /* device description of a GPU backend; empty on the CPU */
    char backend[16];     /* "CPU", "Vulkan", "CUDA" */
    char device[256];     /* the backend's banner */
    char test[48];        /* "pp512", "tg128", "pp512+tg128", "tg128 x8" */
    char test_time[32];   /* ISO-8601 UTC */
    uint64_t model_size, model_n_params, state_bytes_per_seq, logits_hash;
    int n_threads, n_prompt, n_gen, n_seqs, n_reps;
    bool synthetic;
    double *samples_ns, *samples_ts; /* n_reps each, owned */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double bytes_per_token; /* bytes moved per generated token (decode tests); 0 = not applicable */
    double gb_s, copy_gb_s, bw_pct; /* 0 = not applicable or unknown */
    double tflops;                  /* prefill only; 0 = not applicable */
    double dispatches_per_token;    /* backend ops per decode step (decode tests); 0 = not applicable */
};

/* Fills avg/stddev (mean and sample standard deviation, n-1) from the samples. */
void bench_record_stats(struct bench_record *r);
void bench_record_free(struct bench_record *r);

bool bench_format_parse(const char *s, enum bench_format *out);
/* Machine formats stream: begin, one record as each test finishes (flushed), end. The markdown
 * table is printed by end from all records, so its columns can be aligned. */
void bench_out_begin(FILE *f, enum bench_format fmt);
void bench_out_record(FILE *f, enum bench_format fmt, const struct bench_record *r, int index);
void bench_out_end(FILE *f, enum bench_format fmt, const struct bench_record *recs, int n);

/* Bar chart of prefill and decode tok/s per model type, one bar per backend/threads/batch series.
 * Returns false (errno set) when the file cannot be written. */
bool bench_svg_write(const char *path, const struct bench_record *recs, int n);

#endif
