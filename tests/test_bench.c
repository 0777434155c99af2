/* test_bench.c: `rwkv7 bench`. The synthetic builder must produce exactly the tensor names, shapes
 * and types llama.cpp writes (checked against every rand-c256-l2 fixture file type), its images
 * must load and give finite logits, and the CLI's md/csv/json/jsonl outputs must parse with
 * llama-bench's fields; a model with a NaN weight must make the command fail (exit 1); and the
 * no-argument run must finish on the CPU within 60 s. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_synth.h"
#include "dtype.h"
#include "gguf.h"
#include "testing.h"

static const struct bench_geometry rand_c256 = {"rand-c256-l2", 2, 256, 1024, 64, 32, 32, 32, 64, 256};

static void check_layout_against_fixtures(void) {
    static const char *const ftypes_fx[] = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S",
                                            "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1", "IQ4_NL",
                                            "IQ4_XS", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ3_M", "IQ3_XS", "IQ3_S"};
    for (size_t f = 0; f < sizeof ftypes_fx / sizeof ftypes_fx[0]; f++) {
        char rel[128], path[512];
        snprintf(rel, sizeof rel, "rand-c256-l2/rand-c256-l2-%s.gguf", ftypes_fx[f]);
        test_fixture(path, sizeof path, rel);
        const struct bench_ftype *ft = bench_ftype_find(ftypes_fx[f]);
        CHECK(ft != NULL, "ftype %s unknown", ftypes_fx[f]);
        if (!ft) continue;
        struct rwkv7_gguf *g = NULL;
        if (rwkv7_gguf_open(path, &g) != RWKV7_OK) {
            CHECK(0, "cannot open %s: %s", path, rwkv7_last_error());
            continue;
        }
        uint32_t id = 0;
        CHECK(rwkv7_gguf_get_u32(g, "general.file_type", &id) == RWKV7_OK && id == (uint32_t)ft->id,
              "%s: general.file_type %u, builder says %d", ftypes_fx[f], id, ft->id);
        struct bench_tensor_spec *specs = NULL;
        int n = 0;
        CHECK(bench_synth_tensors(&rand_c256, ft, &specs, &n) == RWKV7_OK, "%s: builder failed", ftypes_fx[f]);
        CHECK(n == rwkv7_gguf_n_tensors(g), "%s: %d tensors, file has %lld", ftypes_fx[f], n,
              (long long)rwkv7_gguf_n_tensors(g));
        int bad = 0;
        for (int i = 0; i < n; i++) {
            const struct rwkv7_gguf_tensor *t = rwkv7_gguf_find_tensor(g, specs[i].name);
            bool same = t && t->type == specs[i].type && t->n_dims == specs[i].n_dims;
            for (int d = 0; same && d < 4; d++) same = t->ne[d] == specs[i].ne[d];
            if (!same && bad++ < 3)
                CHECK(0, "%s: tensor %s: builder %s (%lld,%lld,%lld,%lld)/%d, file %s", ftypes_fx[f], specs[i].name,
                      rwkv7_dtype_name(specs[i].type), (long long)specs[i].ne[0], (long long)specs[i].ne[1],
                      (long long)specs[i].ne[2], (long long)specs[i].ne[3], specs[i].n_dims,
                      t ? rwkv7_dtype_name(t->type) : "absent");
        }
        CHECK(bad == 0, "%s: %d tensors differ from the llama.cpp file", ftypes_fx[f], bad);
        free(specs);
        rwkv7_gguf_free(g);
    }
}

/* The released geometries: tensor count 6 + 28 L and the advertised parameter counts. */
static void check_released_geometry(void) {
    static const struct {
        const char *size;
        double params;
    } want[] = {{"0.1B", 0.191e9}, {"0.4B", 0.451e9}, {"1.5B", 1.528e9}, {"2.9B", 2.948e9}, {"7.2B", 7.200e9}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct bench_geometry *g = bench_geometry_find(want[i].size);
        CHECK(g != NULL, "geometry %s unknown", want[i].size);
        if (!g) continue;
        struct bench_tensor_spec *specs = NULL;
        int n = 0;
        CHECK(bench_synth_tensors(g, bench_ftype_find("q4_k"), &specs, &n) == RWKV7_OK, "%s: builder failed", g->name);
        CHECK(n == 6 + 28 * g->n_layer, "%s: %d tensors", g->name, n);
        double p = 0;
        for (int k = 0; k < n; k++) p += (double)(specs[k].ne[0] * specs[k].ne[1] * specs[k].ne[2] * specs[k].ne[3]);
        CHECK(fabs(p - want[i].params) / want[i].params < 0.003, "%s: %.0f params, expected about %.0f", g->name, p,
              want[i].params);
        for (int k = 0; k < n; k++)
            if (!strcmp(specs[k].name, "output.weight"))
                CHECK(specs[k].type == RWKV7_DTYPE_Q6_K, "%s: output.weight is %s in a Q4_K_M file", g->name,
                      rwkv7_dtype_name(specs[k].type));
        free(specs);
    }
    CHECK(bench_ftype_find("q4_k") == bench_ftype_find("Q4_K_M"), "q4_k should mean Q4_K_M");
    CHECK(bench_ftype_find("iq3_s") == bench_ftype_find("IQ3_S"), "iq3_s should mean IQ3_S");
    CHECK(bench_ftype_find("nope") == NULL, "unknown type accepted");
    CHECK(bench_geometry_find("3B") == NULL, "unknown size accepted");
}

/* Synthetic images load through the normal path and give finite logits for every file type. */
static void check_images_run(void) {
    static const char *const types[] = {"f32", "f16", "bf16", "q8_0", "q6_k", "q4_k", "q4_0", "iq4_nl", "iq3_s", "q2_k"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        void *img = NULL;
        size_t size = 0;
        const struct bench_ftype *ft = bench_ftype_find(types[i]);
        CHECK(bench_synth_image(&rand_c256, ft, 7, 2, &img, &size) == RWKV7_OK, "%s: build failed: %s", types[i],
              rwkv7_last_error());
        if (!img) continue;
        void *img2 = NULL;
        size_t size2 = 0;
        /* Deterministic for a seed whatever the thread count. */
        CHECK(bench_synth_image(&rand_c256, ft, 7, 1, &img2, &size2) == RWKV7_OK && size2 == size &&
                  !memcmp(img, img2, size),
              "%s: image depends on the thread count", types[i]);
        free(img2);
        struct rwkv7_model_params mp = {"cpu", NULL, 2, false, true};
        struct rwkv7_model *m = NULL;
        CHECK(rwkv7_model_load_memory(img, size, &mp, &m) == RWKV7_OK, "%s: load failed: %s", types[i], rwkv7_last_error());
        struct rwkv7_ctx *ctx = NULL;
        if (m && rwkv7_ctx_init(m, 1, &ctx) == RWKV7_OK) {
            int32_t ids[16];
            for (int k = 0; k < 16; k++) ids[k] = (int32_t)(k * 37 % 256);
            float *logits = malloc(16 * 256 * sizeof(float));
            int slot = 0;
            CHECK(rwkv7_ctx_eval(ctx, 1, &slot, 16, ids, RWKV7_LOGITS_ALL, logits) == RWKV7_OK, "%s: eval failed", types[i]);
            int finite = 1;
            double amax = 0;
            for (int k = 0; k < 16 * 256; k++) {
                finite &= isfinite(logits[k]) != 0;
                if (fabs(logits[k]) > amax) amax = fabs(logits[k]);
            }
            CHECK(finite && amax > 1e-3 && amax < 1e3, "%s: logits not sane (finite %d, max |x| %g)", types[i], finite, amax);
            free(logits);
        }
        rwkv7_ctx_free(ctx);
        rwkv7_model_free(m);
        free(img);
    }
}

/* ---- a tiny JSON syntax checker (RFC 8259 grammar, no semantics) ---- */

static const char *js_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p) {
    if (*p++ != '"') return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i])) return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *js_number(const char *p) {
    const char *s = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (isdigit((unsigned char)*p)) p++;
    else return NULL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    return p > s ? p : NULL;
}

static const char *js_value(const char *p, int depth) {
    if (depth > 32) return NULL;
    p = js_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = js_string(js_ws(p)))) return NULL;
                p = js_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = js_value(p, depth + 1))) return NULL;
            p = js_ws(p);
            if (*p == ',') { p++; continue; }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"') return js_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return js_number(p);
}

static bool json_valid(const char *s) {
    const char *e = js_value(s, 0);
    return e && *js_ws(e) == 0;
}

/* Number after the n-th occurrence of "key": in s; NAN when absent or not a number. */
static double json_num(const char *s, const char *key, int nth) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = s;
    for (int i = 0; i <= nth; i++) {
        p = strstr(p, pat);
        if (!p) return NAN;
        p += strlen(pat);
    }
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- running the CLI ---- */

static char *run_cli(const char *args, int *status, double *seconds) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' bench %s 2>/dev/null", RWKV7_CLI_PATH, args);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            buf = nb;
        }
    }
    int st = pclose(f);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (seconds) *seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (buf) buf[len] = 0;
    return buf;
}

static const char *const required_fields[] = {
    "model_filename", "model_type", "model_size", "model_n_params", "backends", "n_prompt", "n_gen",
    "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ts", "samples_ns", "test", "n_seqs",
    "bytes_per_token", "gb_s", "bw_pct", "tflops", "dispatches_per_token", "logits_hash",
};

static void check_record_fields(const char *fmt, const char *out, int n_records) {
    for (size_t k = 0; k < sizeof required_fields / sizeof required_fields[0]; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\"%s\": ", required_fields[k]);
        CHECK(count_str(out, pat) == n_records, "%s: field %s appears %d times, expected %d", fmt, required_fields[k],
              count_str(out, pat), n_records);
    }
    for (int i = 0; i < n_records; i++) {
        double ts = json_num(out, "avg_ts", i), ns = json_num(out, "avg_ns", i);
        CHECK(ts > 0 && isfinite(ts), "%s: record %d avg_ts %g", fmt, i, ts);
        CHECK(ns > 0 && isfinite(ns), "%s: record %d avg_ns %g", fmt, i, ns);
        CHECK(json_num(out, "model_n_params", i) == 834048, "%s: record %d n_params %g", fmt, i, json_num(out, "model_n_params", i));
    }
    CHECK(json_num(out, "n_prompt", 0) == 8 && json_num(out, "n_gen", 0) == 0, "%s: first test is not pp8", fmt);
    CHECK(json_num(out, "n_prompt", 1) == 0 && json_num(out, "n_gen", 1) == 4, "%s: second test is not tg4", fmt);
    CHECK(json_num(out, "gb_s", 1) > 0, "%s: decode GB/s missing", fmt);
    CHECK(json_num(out, "tflops", 0) > 0, "%s: prefill TFLOP/s missing", fmt);
}

static void check_cli_outputs(void) {
    char model[512], args[1024];
    test_fixture(model, sizeof model, "tiny-rwkv7-834K/tiny-rwkv7-834K-Q8_0.gguf");
    int st;
    char *out;

    snprintf(args, sizeof args, "--backend cpu -m '%s' -p 8 -n 4 -r 2 -o json", model);
    out = run_cli(args, &st, NULL);
    CHECK(out && st == 0, "json run exited %d", st);
    if (out) {
        CHECK(json_valid(out), "json output does not parse:\n%s", out);
        CHECK(*js_ws(out) == '[', "json output is not an array");
        check_record_fields("json", out, 2);
        CHECK(json_num(out, "repetitions", 0) == 2, "json: repetitions");
        free(out);
    }

    snprintf(args, sizeof args, "--backend cpu -m '%s' -p 8 -n 4 -r 2 -o jsonl", model);
    out = run_cli(args, &st, NULL);
    CHECK(out && st == 0, "jsonl run exited %d", st);
    if (out) {
        check_record_fields("jsonl", out, 2);
        int lines = 0;
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            CHECK(json_valid(line) && line[0] == '{', "jsonl line %d does not parse: %s", lines, line);
            lines++;
        }
        CHECK(lines == 2, "jsonl: %d lines, expected 2", lines);
        free(out);
    }

    snprintf(args, sizeof args, "--backend cpu -m '%s' -p 8 -n 4 -r 2 -o csv", model);
    out = run_cli(args, &st, NULL);
    CHECK(out && st == 0, "csv run exited %d", st);
    if (out) {
        char *header = strtok(out, "\n");
        int cols = header ? count_str(header, ",") + 1 : 0;
        CHECK(header && strstr(header, "model_filename") && strstr(header, "avg_ts") && strstr(header, "stddev_ts"),
              "csv header lacks llama-bench fields: %s", header ? header : "(none)");
        int rows = 0;
        for (char *line = strtok(NULL, "\n"); line; line = strtok(NULL, "\n")) {
            /* Every value is quoted: "a","b",... so fields = quote pairs. */
            CHECK(line[0] == '"' && count_str(line, "\"") == 2 * cols, "csv row %d has not %d quoted fields: %s", rows,
                  cols, line);
            CHECK(strstr(line, rows == 0 ? "\"pp8\"" : "\"tg4\"") != NULL, "csv row %d test name", rows);
            rows++;
        }
        CHECK(rows == 2, "csv: %d rows, expected 2", rows);
        free(out);
    }

    snprintf(args, sizeof args, "--backend cpu -m '%s' -p 8 -n 4 -r 2 -b 1,2 -o md", model);
    out = run_cli(args, &st, NULL);
    CHECK(out && st == 0, "md run exited %d", st);
    if (out) {
        CHECK(strstr(out, "| model") && strstr(out, "| t/s") && strstr(out, "GB/s") && strstr(out, "TFLOP/s"),
              "md header lacks columns:\n%s", out);
        CHECK(count_str(out, "| rwkv7 834K Q8_0 |") == 3, "md: expected pp8, tg4 and tg4 x2 rows:\n%s", out);
        CHECK(strstr(out, "tg4 x2") != NULL, "md: batched decode row missing");
        CHECK(strstr(out, "copy bandwidth") != NULL, "md: device banner missing");
        free(out);
    }

    out = run_cli("--types nope", &st, NULL);
    CHECK(st == 2, "unknown type: exit %d, expected 2", st);
    free(out);
    out = run_cli("--backend cpu -m /nonexistent.gguf -p 8 -n 0 -r 1", &st, NULL);
    CHECK(st == 2, "missing file: exit %d, expected 2", st);
    free(out);
}

/* A NaN in a norm weight makes every logit NaN: the bench must refuse to report (exit 1). */
static void check_nonfinite_fails(void) {
    void *img = NULL;
    size_t size = 0;
    if (bench_synth_image(&rand_c256, bench_ftype_find("F32"), 3, 1, &img, &size) != RWKV7_OK) {
        CHECK(0, "build failed");
        return;
    }
    struct rwkv7_gguf *g = NULL;
    CHECK(rwkv7_gguf_open_memory(img, size, &g) == RWKV7_OK, "reopen failed");
    const struct rwkv7_gguf_tensor *t = g ? rwkv7_gguf_find_tensor(g, "output_norm.weight") : NULL;
    if (t) {
        float nan = NAN;
        memcpy((char *)img + rwkv7_gguf_data_offset(g) + t->offset, &nan, sizeof nan);
    }
    rwkv7_gguf_free(g);
    char path[256];
    snprintf(path, sizeof path, "/tmp/rwkv7-test-bench-nan-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(img, 1, size, f) == size, "cannot write %s", path);
    if (f) fclose(f);
    free(img);
    char args[512];
    snprintf(args, sizeof args, "--backend cpu -m '%s' -p 4 -n 2 -r 1 -o json", path);
    int st;
    char *out = run_cli(args, &st, NULL);
    CHECK(st == 1, "NaN model: exit %d, expected 1", st);
    free(out);
    remove(path);
}

/* Sanitized builds run 5-10x slower: the 60 s promise is about the release build (tools/test.sh
 * runs this test there too), so a sanitized run checks the output but not the time. */
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_TIMED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_TIMED 0
#endif
#endif
#ifndef BENCH_TIMED
#define BENCH_TIMED 1
#endif

static void check_no_args_run(void) {
    if (!BENCH_TIMED) {
        fprintf(stderr, "test_bench: sanitized build: the no-argument run is checked in the release build\n");
        return;
    }
    int st;
    double secs = 0;
    char *out = run_cli("--backend cpu", &st, &secs);
    fprintf(stderr, "test_bench: `rwkv7 bench --backend cpu` took %.1f s\n", secs);
    CHECK(out && st == 0, "no-argument run exited %d", st);
    CHECK(secs < 60, "no-argument run took %.1f s (limit 60 s)", secs);
    if (out) {
        CHECK(count_str(out, "| rwkv7 0.1B ") == 6, "expected pp and tg rows for 3 types:\n%s", out);
        CHECK(strstr(out, "0.1B F16") && strstr(out, "0.1B Q8_0") && strstr(out, "0.1B Q4_K_M"), "default types missing");
        free(out);
    }
}

int main(void) {
    check_released_geometry();
    check_layout_against_fixtures();
    check_images_run();
    if (!test_path_exists(RWKV7_CLI_PATH)) {
        if (g_test_failures) return test_finish("test_bench");
        TEST_SKIP("CLI %s is not built; skipping the command-line checks", RWKV7_CLI_PATH);
    }
    check_cli_outputs();
    check_nonfinite_fails();
    check_no_args_run();
    return test_finish("test_bench");
}
