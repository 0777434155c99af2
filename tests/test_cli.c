/* test_cli.c: the rwkv7 command as a user meets it: exit codes and one-line errors for unknown
 * flags, missing and malformed files and foreign architectures; `logits` (prefill and --serial)
 * against the fixture reference; `tokenize --ids`; deterministic `generate`; --help everywhere. */
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>
#include <unistd.h>

#include "gguf_write.h"
#include "testing.h"

static char g_out[1 << 16], g_err[1 << 16];

/* Runs the CLI with a shell argument string; captures stdout/stderr; returns the exit code. */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >/tmp/rwkv7_cli_out.%d 2>/tmp/rwkv7_cli_err.%d", RWKV7_CLI_PATH, args, (int)getpid(), (int)getpid());
    int st = system(cmd);
    char p[64];
    size_t n;
    snprintf(p, sizeof p, "/tmp/rwkv7_cli_out.%d", (int)getpid());
    char *o = test_read_file(p, &n);
    snprintf(g_out, sizeof g_out, "%.*s", o ? (int)(n < sizeof g_out - 1 ? n : sizeof g_out - 1) : 0, o ? o : "");
    free(o);
    unlink(p);
    snprintf(p, sizeof p, "/tmp/rwkv7_cli_err.%d", (int)getpid());
    o = test_read_file(p, &n);
    snprintf(g_err, sizeof g_err, "%.*s", o ? (int)(n < sizeof g_err - 1 ? n : sizeof g_err - 1) : 0, o ? o : "");
    free(o);
    unlink(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

int main(void) {
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    char tiny[512], ref[512], world[512], toks[512];
    test_fixture(tiny, sizeof tiny, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    test_fixture(ref, sizeof ref, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.exact.logits.f32");
    test_fixture(toks, sizeof toks, "tiny-rwkv7-834K/tokens.txt");
    test_fixture(world, sizeof world, "world/world-c128-Q8_0.gguf");
    char a[2048];

    /* usage errors: exit 2, one line naming the problem */
    CHECK(run("") == 2, "no command");
    CHECK(run("frobnicate") == 2 && strstr(g_err, "unknown command 'frobnicate'"), "unknown command: %s", g_err);
    const char *cmds[] = {"generate", "logits", "tokenize", "info", "devices", "chat", "batch", "bench"};
    for (int i = 0; i < 8; i++) {
        snprintf(a, sizeof a, "%s --definitely-not-a-flag", cmds[i]);
        int rc = run(a);
        CHECK(rc == 2 && strstr(g_err, "unknown option '--definitely-not-a-flag'") && count_lines(g_err) == 1,
              "%s: rc %d, stderr '%s'", cmds[i], rc, g_err);
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK(run(a) == 0 && strstr(g_out, "usage: rwkv7"), "%s --help: %s", cmds[i], g_out);
    }
    CHECK(run("info -m /nonexistent/model.gguf") == 2 && strstr(g_err, "cannot open") && count_lines(g_err) == 1,
          "missing file: %s", g_err);
    CHECK(run("generate -m") == 2 && strstr(g_err, "needs a value"), "missing value: %s", g_err);
    snprintf(a, sizeof a, "generate -m %s -n abc", tiny);
    CHECK(run(a) == 2 && strstr(g_err, "integer"), "bad number: %s", g_err);

    /* a well-formed GGUF of another architecture, and a truncated model */
    struct rwkv7_gguf_writer *w = NULL;
    CHECK(rwkv7_gguf_writer_init(&w) == RWKV7_OK, "writer");
    rwkv7_gguf_writer_add_str(w, "general.architecture", "llama");
    float zeros[32] = {0};
    int64_t ne[4] = {32, 1, 1, 1};
    rwkv7_gguf_writer_add_tensor(w, "token_embd.weight", 1, ne, 0, zeros, sizeof zeros);
    char llama[64], trunc[64];
    snprintf(llama, sizeof llama, "/tmp/rwkv7_cli_llama.%d.gguf", (int)getpid());
    CHECK(rwkv7_gguf_writer_write_file(w, llama) == RWKV7_OK, "write: %s", rwkv7_last_error());
    rwkv7_gguf_writer_free(w);
    snprintf(a, sizeof a, "info -m %s", llama);
    CHECK(run(a) == 2 && strstr(g_err, "architecture 'llama'") && count_lines(g_err) == 1, "foreign arch: %s", g_err);
    unlink(llama);
    size_t n;
    char *bytes = test_read_file(tiny, &n);
    snprintf(trunc, sizeof trunc, "/tmp/rwkv7_cli_trunc.%d.gguf", (int)getpid());
    FILE *f = fopen(trunc, "wb");
    if (bytes && f) fwrite(bytes, 1, n / 2, f);
    if (f) fclose(f);
    free(bytes);
    snprintf(a, sizeof a, "generate -m %s -p hi", trunc);
    CHECK(run(a) == 2 && strstr(g_err, "beyond file size") && count_lines(g_err) == 1, "truncated: %s", g_err);
    unlink(trunc);

    /* logits: prefill and serial both match the reference */
    char out1[64], out2[64];
    snprintf(out1, sizeof out1, "/tmp/rwkv7_cli_l1.%d.f32", (int)getpid());
    snprintf(out2, sizeof out2, "/tmp/rwkv7_cli_l2.%d.f32", (int)getpid());
    snprintf(a, sizeof a, "logits -m %s --tokens-file %s -o %s --backend cpu", tiny, toks, out1);
    CHECK(run(a) == 0, "logits: %s", g_err);
    snprintf(a, sizeof a, "logits -m %s --tokens-file %s -o %s --serial --backend cpu -t 1", tiny, toks, out2);
    CHECK(run(a) == 0, "logits --serial: %s", g_err);
    size_t n1 = 0, n2 = 0, nr = 0;
    float *l1 = test_read_file(out1, &n1), *l2 = test_read_file(out2, &n2), *lr = test_read_file(ref, &nr);
    CHECK(l1 && l2 && lr && n1 == nr && n2 == nr && nr == 81 * 256 * 4, "logits sizes %zu %zu %zu", n1, n2, nr);
    if (l1 && l2 && lr && n1 == nr && n2 == nr) {
        struct test_logit_cmp c1 = test_compare_logits(l1, lr, 81, 256), c2 = test_compare_logits(l2, lr, 81, 256);
        CHECK(c1.rel_maxdiff <= 1e-4 && c1.mean_kl <= 1e-7 && c1.top1 == 1.0, "prefill rel %g", c1.rel_maxdiff);
        CHECK(c2.rel_maxdiff <= 1e-4 && c2.mean_kl <= 1e-7 && c2.top1 == 1.0, "serial rel %g", c2.rel_maxdiff);
    }
    free(l1);
    free(l2);
    free(lr);
    unlink(out1);
    unlink(out2);
    snprintf(a, sizeof a, "logits -m %s --tokens '1 2 99999' -o %s", tiny, out1);
    CHECK(run(a) == 2 && strstr(g_err, "out of range"), "bad token id: %s", g_err);
    unlink(out1);

    /* tokenize --ids: the World vocabulary test vector of rwkv7-gguf.md 6.6 */
    snprintf(a, sizeof a, "tokenize -m %s -p 'User: hi\\n\\nAssistant:' --ids", world);
    CHECK(run(a) == 0 && !strcmp(g_out, "24281 59 4571 261 5585 41693 59\n"), "tokenize: '%s' %s", g_out, g_err);

    /* generate: greedy is deterministic; a seed makes sampling deterministic */
    static char first[sizeof g_out];
    snprintf(a, sizeof a, "generate -m %s -p 'The quick' -n 24 --temp 0 --no-perf", tiny);
    CHECK(run(a) == 0 && strncmp(g_out, "The quick", 9) == 0 && strlen(g_out) > 12, "generate: %s %s", g_out, g_err);
    memcpy(first, g_out, sizeof first);
    CHECK(run(a) == 0 && !strcmp(first, g_out), "greedy differs: '%s' vs '%s'", first, g_out);
    snprintf(a, sizeof a, "generate -m %s -p 'The quick' -n 24 --temp 1 -s 42 --no-perf", tiny);
    CHECK(run(a) == 0, "sampled: %s", g_err);
    memcpy(first, g_out, sizeof first);
    CHECK(run(a) == 0 && !strcmp(first, g_out), "same seed differs");
    snprintf(a, sizeof a, "generate -m %s -p 'The quick' -n 8 --temp 0", tiny);
    CHECK(run(a) == 0 && strstr(g_err, "prompt eval time") && strstr(g_err, "eval time"), "perf lines: %s", g_err);
    /* --backend auto never picks a CPU implementation of Vulkan (lavapipe) over the CPU backend */
    CHECK(!strstr(g_err, "rwkv7 generate: Vulkan0: llvmpipe"), "auto chose lavapipe: %s", g_err);
    snprintf(a, sizeof a, "generate -m %s -p 'The' -n 200 --temp 0 -r ' ' --no-perf", tiny);
    CHECK(run(a) == 0 && !strchr(g_out + 3, ' '), "stop string: '%s'", g_out);

    /* info reads state files too */
    char state[64];
    snprintf(state, sizeof state, "/tmp/rwkv7_cli_state.%d.gguf", (int)getpid());
    snprintf(a, sizeof a, "generate -m %s -p 'The' -n 4 --temp 0 --no-perf --state-out %s", tiny, state);
    CHECK(run(a) == 0, "state-out: %s", g_err);
    snprintf(a, sizeof a, "info -m %s", state);
    CHECK(run(a) == 0 && strstr(g_out, "(state file)") && strstr(g_out, "blk.11.state_wkv"), "info on a state: %s %s", g_out, g_err);
    unlink(state);
    return test_finish("test_cli");
}
