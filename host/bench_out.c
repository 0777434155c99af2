/* bench_out.c: see bench_out.h. Field order follows llama-bench's test::get_fields() for the
 * fields that mean something for RWKV, then ours; numbers that are unknown print as JSON null or
 * an empty CSV cell, never as NaN, so every output parses. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_out.h"

void bench_record_stats(struct bench_record *r) {
    int n = r->n_reps;
    double sn = 0, st = 0;
    for (int i = 0; i < n; i++) {
        sn += r->samples_ns[i];
        st += r->samples_ts[i];
    }
    r->avg_ns = n ? sn / n : 0;
    r->avg_ts = n ? st / n : 0;
    double vn = 0, vt = 0;
    for (int i = 0; i < n; i++) {
        vn += (r->samples_ns[i] - r->avg_ns) * (r->samples_ns[i] - r->avg_ns);
        vt += (r->samples_ts[i] - r->avg_ts) * (r->samples_ts[i] - r->avg_ts);
    }
    r->stddev_ns = n > 1 ? sqrt(vn / (n - 1)) : 0;
    r->stddev_ts = n > 1 ? sqrt(vt / (n - 1)) : 0;
}

void bench_record_free(struct bench_record *r) {
    free(r->samples_ns);
    free(r->samples_ts);
    r->samples_ns = r->samples_ts = NULL;
}

bool bench_format_parse(const char *s, enum bench_format *out) {
    static const struct {
        const char *name;
        enum bench_format fmt;
    } names[] = {{"md", BENCH_MD}, {"csv", BENCH_CSV}, {"json", BENCH_JSON}, {"jsonl", BENCH_JSONL}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].fmt;
            return true;
        }
    return false;
}

/* ---- one field list drives CSV, JSON and JSONL ---- */

enum field_kind { F_STR, F_INT, F_NUM, F_BOOL, F_HEX, F_ARR_NS, F_ARR_TS };

struct field {
    const char *name;
    enum field_kind kind;
    bool json_only; /* llama-bench puts the sample arrays in JSON/JSONL only */
};

/* The commit the binary was built from (generated at build time: tools/git_commit.cmake). */
extern const char rwkv7_git_commit[];
#define RWKV7_GIT_COMMIT rwkv7_git_commit

static const struct field fields[] = {
    {"build_commit", F_STR, false},
    {"cpu_info", F_STR, false},        {"gpu_info", F_STR, false},
    {"backends", F_STR, false},        {"model_filename", F_STR, false},
    {"model_type", F_STR, false},      {"model_size", F_INT, false},
    {"model_n_params", F_INT, false},  {"n_threads", F_INT, false},
    {"devices", F_STR, false},         {"n_prompt", F_INT, false},
    {"n_gen", F_INT, false},           {"n_depth", F_INT, false},
    {"test_time", F_STR, false},       {"avg_ns", F_NUM, false},
    {"stddev_ns", F_NUM, false},       {"avg_ts", F_NUM, false},
    {"stddev_ts", F_NUM, false},       {"samples_ns", F_ARR_NS, true},
    {"samples_ts", F_ARR_TS, true},    {"test", F_STR, false},
    {"n_seqs", F_INT, false},          {"repetitions", F_INT, false},
    {"synthetic", F_BOOL, false},      {"state_bytes_per_seq", F_INT, false},
    {"bytes_per_token", F_NUM, false}, {"gb_s", F_NUM, false},
    {"copy_bw_gb_s", F_NUM, false},    {"bw_pct", F_NUM, false},
    {"tflops", F_NUM, false},          {"dispatches_per_token", F_NUM, false},
    {"logits_hash", F_HEX, false},
};
#define N_FIELDS (int)(sizeof fields / sizeof fields[0])

static const char *field_str(const struct bench_record *r, const char *name) {
    if (!strcmp(name, "build_commit")) return RWKV7_GIT_COMMIT;
    if (!strcmp(name, "cpu_info")) return r->cpu_info;
    if (!strcmp(name, "gpu_info")) return r->gpu_info;
    if (!strcmp(name, "backends")) return r->backend;
    if (!strcmp(name, "model_filename")) return r->model_filename;
    if (!strcmp(name, "model_type")) return r->model_type;
    if (!strcmp(name, "devices")) return r->device;
    if (!strcmp(name, "test_time")) return r->test_time;
    return r->test;
}

static long long field_int(const struct bench_record *r, const char *name) {
    if (!strcmp(name, "model_size")) return (long long)r->model_size;
    if (!strcmp(name, "model_n_params")) return (long long)r->model_n_params;
    if (!strcmp(name, "n_threads")) return r->n_threads;
    if (!strcmp(name, "n_prompt")) return r->n_prompt;
    if (!strcmp(name, "n_gen")) return r->n_gen;
    if (!strcmp(name, "n_seqs")) return r->n_seqs;
    if (!strcmp(name, "repetitions")) return r->n_reps;
    if (!strcmp(name, "state_bytes_per_seq")) return (long long)r->state_bytes_per_seq;
    return 0; /* n_depth: we never pre-fill a depth */
}

static double field_num(const struct bench_record *r, const char *name) {
    if (!strcmp(name, "avg_ns")) return r->avg_ns;
    if (!strcmp(name, "stddev_ns")) return r->stddev_ns;
    if (!strcmp(name, "avg_ts")) return r->avg_ts;
    if (!strcmp(name, "stddev_ts")) return r->stddev_ts;
    if (!strcmp(name, "bytes_per_token")) return r->bytes_per_token;
    if (!strcmp(name, "gb_s")) return r->gb_s;
    if (!strcmp(name, "copy_bw_gb_s")) return r->copy_gb_s;
    if (!strcmp(name, "bw_pct")) return r->bw_pct;
    if (!strcmp(name, "dispatches_per_token")) return r->dispatches_per_token;
    return r->tflops;
}

/* Times are whole nanoseconds, as llama-bench writes them. */
static bool is_ns(const char *name) { return strstr(name, "_ns") != NULL; }

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Derived metrics are 0 where they do not apply (a decode GB/s for a prefill test): null. */
static bool metric_absent(const char *name, double v) {
    bool optional = !strcmp(name, "bytes_per_token") || !strcmp(name, "gb_s") || !strcmp(name, "copy_bw_gb_s") ||
                    !strcmp(name, "bw_pct") || !strcmp(name, "tflops") || !strcmp(name, "dispatches_per_token");
    return !isfinite(v) || (optional && v == 0);
}

static void json_record(FILE *f, const struct bench_record *r, const char *indent, const char *sep) {
    fputc('{', f);
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *fd = &fields[i];
        fprintf(f, "%s%s%s\"%s\": ", i ? "," : "", sep, indent, fd->name);
        switch (fd->kind) {
        case F_STR: json_str(f, field_str(r, fd->name)); break;
        case F_INT: fprintf(f, "%lld", field_int(r, fd->name)); break;
        case F_BOOL: fprintf(f, "%s", r->synthetic ? "true" : "false"); break;
        case F_HEX: fprintf(f, "\"%016llx\"", (unsigned long long)r->logits_hash); break;
        case F_NUM: {
            double v = field_num(r, fd->name);
            if (metric_absent(fd->name, v)) fprintf(f, "null");
            else fprintf(f, is_ns(fd->name) ? "%.0f" : "%.6g", v);
            break;
        }
        case F_ARR_NS:
        case F_ARR_TS: {
            const double *a = fd->kind == F_ARR_NS ? r->samples_ns : r->samples_ts;
            fputc('[', f);
            for (int k = 0; k < r->n_reps; k++)
                fprintf(f, fd->kind == F_ARR_NS ? "%s%.0f" : "%s%.6g", k ? ", " : "", isfinite(a[k]) ? a[k] : 0.0);
            fputc(']', f);
            break;
        }
        }
    }
    fprintf(f, "%s}", sep[0] == '\n' ? "\n  " : " ");
}

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_record(FILE *f, const struct bench_record *r) {
    int first = 1;
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *fd = &fields[i];
        if (fd->json_only) continue;
        if (!first) fputc(',', f);
        first = 0;
        char buf[64];
        switch (fd->kind) {
        case F_STR: csv_str(f, field_str(r, fd->name)); continue;
        case F_INT: snprintf(buf, sizeof buf, "%lld", field_int(r, fd->name)); break;
        case F_BOOL: snprintf(buf, sizeof buf, "%s", r->synthetic ? "true" : "false"); break;
        case F_HEX: snprintf(buf, sizeof buf, "%016llx", (unsigned long long)r->logits_hash); break;
        default: {
            double v = field_num(r, fd->name);
            if (metric_absent(fd->name, v)) buf[0] = 0;
            else snprintf(buf, sizeof buf, is_ns(fd->name) ? "%.0f" : "%.6g", v);
        }
        }
        csv_str(f, buf);
    }
    fputc('\n', f);
}

void bench_out_begin(FILE *f, enum bench_format fmt) {
    if (fmt == BENCH_JSON) fprintf(f, "[\n");
    if (fmt == BENCH_CSV) {
        int first = 1;
        for (int i = 0; i < N_FIELDS; i++) {
            if (fields[i].json_only) continue;
            fprintf(f, "%s%s", first ? "" : ",", fields[i].name);
            first = 0;
        }
        fputc('\n', f);
    }
    fflush(f);
}

void bench_out_record(FILE *f, enum bench_format fmt, const struct bench_record *r, int index) {
    switch (fmt) {
    case BENCH_JSON:
        fprintf(f, "%s  ", index ? ",\n" : "");
        json_record(f, r, "    ", "\n");
        break;
    case BENCH_JSONL:
        json_record(f, r, "", " ");
        fputc('\n', f);
        break;
    case BENCH_CSV: csv_record(f, r); break;
    case BENCH_MD: break;
    }
    fflush(f);
}

/* ---- markdown ---- */

#define MD_COLS 13

static void fmt_size(char *b, size_t n, double bytes) {
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(b, n, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else snprintf(b, n, "%.2f MiB", bytes / (1024.0 * 1024));
}

static void md_cells(const struct bench_record *r, char cells[MD_COLS][96]) {
    snprintf(cells[0], 96, "%s", r->model_type);
    fmt_size(cells[1], 96, (double)r->model_size);
    if (r->model_n_params >= 1000000000ull) snprintf(cells[2], 96, "%.2f B", r->model_n_params / 1e9);
    else snprintf(cells[2], 96, "%.2f M", r->model_n_params / 1e6);
    snprintf(cells[3], 96, "%s", r->backend);
    snprintf(cells[4], 96, "%d", r->n_threads);
    snprintf(cells[5], 96, "%s", r->test);
    snprintf(cells[6], 96, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
    if (r->bytes_per_token > 0) fmt_size(cells[7], 96, r->bytes_per_token);
    else snprintf(cells[7], 96, "-");
    if (r->gb_s > 0) snprintf(cells[8], 96, "%.2f", r->gb_s);
    else snprintf(cells[8], 96, "-");
    if (r->bw_pct > 0) snprintf(cells[9], 96, "%.1f%%", r->bw_pct);
    else snprintf(cells[9], 96, "-");
    if (r->tflops > 0) snprintf(cells[10], 96, "%.3f", r->tflops);
    else snprintf(cells[10], 96, "-");
    if (r->dispatches_per_token > 0) snprintf(cells[11], 96, "%.0f", r->dispatches_per_token);
    else snprintf(cells[11], 96, "-");
    snprintf(cells[12], 96, "%016llx", (unsigned long long)r->logits_hash);
}

/* Display width: the UTF-8 "±" is two bytes but one column. */
static int md_width(const char *s) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xC0) != 0x80;
    return w;
}

static void md_cell(FILE *f, const char *s, int width, bool right) {
    int pad = width - md_width(s);
    fprintf(f, " ");
    if (right) fprintf(f, "%*s%s", pad > 0 ? pad : 0, "", s);
    else fprintf(f, "%s%*s", s, pad > 0 ? pad : 0, "");
    fprintf(f, " |");
}

void bench_out_end(FILE *f, enum bench_format fmt, const struct bench_record *recs, int n) {
    if (fmt == BENCH_JSON) fprintf(f, "%s]\n", n ? "\n" : "");
    if (fmt != BENCH_MD) {
        fflush(f);
        return;
    }
    static const char *const head[MD_COLS] = {"model", "size", "params", "backend", "threads", "test",
                                              "t/s", "bytes/tok", "GB/s", "% copy BW", "TFLOP/s", "ops/tok", "logits hash"};
    static const bool right[MD_COLS] = {false, true, true, false, true, true, true, true, true, true, true, true, false};
    int width[MD_COLS];
    char cells[MD_COLS][96];
    for (int c = 0; c < MD_COLS; c++) width[c] = md_width(head[c]);
    for (int i = 0; i < n; i++) {
        md_cells(&recs[i], cells);
        for (int c = 0; c < MD_COLS; c++)
            if (md_width(cells[c]) > width[c]) width[c] = md_width(cells[c]);
    }
    fprintf(f, "|");
    for (int c = 0; c < MD_COLS; c++) md_cell(f, head[c], width[c], false);
    fprintf(f, "\n|");
    for (int c = 0; c < MD_COLS; c++) {
        fprintf(f, " ");
        for (int k = 0; k < width[c] - 1; k++) fputc('-', f);
        fprintf(f, "%s |", right[c] ? ":" : "-");
    }
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        md_cells(&recs[i], cells);
        fprintf(f, "|");
        for (int c = 0; c < MD_COLS; c++) md_cell(f, cells[c], width[c], right[c]);
        fprintf(f, "\n");
    }
    fflush(f);
}
