/* test_bench_quality.c: `rwkv7 bench --quality` on the rand-c256-l2 F32 model: one row for the
 * base and one per type, in every output format; KL zero for the base and growing as bits go
 * down; the plot is written; an unknown or unsupported type is refused before any work. */
#define _POSIX_C_SOURCE 200809L
#include "cli_run.h"

static double field(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

int main(void) {
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    char model[512], args[2048], svg[128];
    test_fixture(model, sizeof model, "rand-c256-l2/rand-c256-l2-F32.gguf");
    snprintf(svg, sizeof svg, "/tmp/rwkv7_quality.%d.svg", (int)getpid());
    const char *common = "--backend cpu -t 2 -c 64 --chunks 3 -p 16 -n 4 -r 1";
    snprintf(args, sizeof args, "bench --quality -m %s --types Q8_0,Q4_0 %s -o jsonl --plot %s", model, common, svg);
    int rc = cli_run(args);
    CHECK(rc == 0, "exit %d: %s", rc, g_err);
    CHECK(cli_count_lines(g_out) == 3, "want 3 JSONL rows: %s", g_out);
    const char *q8 = strstr(g_out, "\"Q8_0\""), *q4 = strstr(g_out, "\"Q4_0\"");
    CHECK(q8 && q4 && strstr(g_out, "base (F32)"), "rows: %s", g_out);
    if (q8 && q4) {
        const double k0 = field(g_out, "\"kld_mean\": "), k8 = field(q8, "\"kld_mean\": "), k4 = field(q4, "\"kld_mean\": ");
        CHECK(k0 == 0 && k8 > 0 && k4 > 4 * k8, "KLD base %g, Q8_0 %g, Q4_0 %g", k0, k8, k4);
        CHECK(field(q4, "\"bpw\": ") < field(q8, "\"bpw\": ") && field(q4, "\"tg_ts\": ") > 0 && isfinite(field(q4, "\"ppl\": ")),
              "fields: %s", q4);
    }
    char *s = test_read_file(svg, NULL);
    CHECK(s && strstr(s, "<svg") && strstr(s, "Q4_0"), "plot missing or empty");
    free(s);
    unlink(svg);
    snprintf(args, sizeof args, "bench --quality -m %s --types Q4_K_M %s -o csv", model, common);
    CHECK(cli_run(args) == 0 && cli_count_lines(g_out) == 3 && strstr(g_out, "\"kld_mean\""), "csv: %s", g_out);
    snprintf(args, sizeof args, "bench --quality -m %s --types Q4_K_M %s", model, common);
    CHECK(cli_run(args) == 0 && strstr(g_out, "| mean KLD |"), "md: %s", g_out);
    snprintf(args, sizeof args, "bench --quality -m %s --types Q9_9 %s", model, common);
    CHECK(cli_run(args) == 2 && cli_count_lines(g_err) == 1, "unknown type: %s", g_err);
    snprintf(args, sizeof args, "bench --quality -m %s --types IQ2_XXS %s", model, common);
    CHECK(cli_run(args) == 2 && cli_count_lines(g_err) == 1, "IQ2_XXS: %s", g_err);
    CHECK(cli_run("bench --quality --help") == 0 && strstr(g_out, "--plot"), "--help");
    return test_finish("test_bench_quality");
}
