/* test_cli.c: the rwkv7 command as a user meets it: exit codes and one-line errors for unknown
 * flags, missing and malformed files and foreign architectures; `logits` (prefill and --serial)
 * against the fixture reference; `tokenize --ids`; deterministic `generate`; --help everywhere. */
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>

#include "gguf.h"
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

/* Copies the model src to dst with element elem of F32 tensor `tensor` set to NaN (issue 16.4:
 * such a file loaded, `logits` wrote NaN and `generate` printed nothing and exited 0). */
static bool write_nan_model(const char *src, const char *dst, const char *tensor, int64_t elem) {
    struct rwkv7_gguf *g = NULL;
    if (rwkv7_gguf_open(src, &g) != RWKV7_OK) return false;
    const struct rwkv7_gguf_tensor *t = rwkv7_gguf_find_tensor(g, tensor);
    bool ok = t && t->type == 0 && elem * 4 < (int64_t)t->nbytes;
    size_t off = ok ? (size_t)((const char *)t->data - (const char *)rwkv7_gguf_base(g)) + (size_t)elem * 4 : 0;
    rwkv7_gguf_free(g);
    size_t n = 0;
    char *b = ok ? test_read_file(src, &n) : NULL;
    FILE *f = b && off + 4 <= n ? fopen(dst, "wb") : NULL;
    if (f) {
        float nan = NAN;
        memcpy(b + off, &nan, 4);
        ok = fwrite(b, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
    } else {
        ok = false;
    }
    free(b);
    return ok;
}

static void test_non_finite_weights(const char *tiny) {
    char nan_model[64], out[64], a[1024];
    snprintf(nan_model, sizeof nan_model, "/tmp/rwkv7_cli_nan.%d.gguf", (int)getpid());
    snprintf(out, sizeof out, "/tmp/rwkv7_cli_nan.%d.f32", (int)getpid());
    CHECK(write_nan_model(tiny, nan_model, "blk.5.time_mix_value.weight", 1000), "write the NaN model");
    snprintf(a, sizeof a, "generate -m %s -p 'The quick' -n 8 --temp 0 --no-perf --backend cpu", nan_model);
    int rc = run(a);
    CHECK(rc == 1 && strstr(g_err, "non-finite logits at token 9") && strstr(g_err, "--check-tensors"),
          "generate on NaN weights: rc %d, '%s'", rc, g_err);
    unlink(out);
    snprintf(a, sizeof a, "logits -m %s --tokens '1 2 3' -o %s --backend cpu", nan_model, out);
    rc = run(a);
    CHECK(rc == 1 && strstr(g_err, "non-finite logits at token 1") && !test_path_exists(out), "logits on NaN weights: rc %d, '%s'",
          rc, g_err);
    snprintf(a, sizeof a, "logits -m %s --tokens '1 2 3' -o %s --backend cpu --check-tensors", nan_model, out);
    rc = run(a);
    CHECK(rc == 2 && strstr(g_err, "tensor 'blk.5.time_mix_value.weight' (f32) holds NaN at element 1000") && count_lines(g_err) == 1,
          "--check-tensors names the tensor: rc %d, '%s'", rc, g_err);
    snprintf(a, sizeof a, "generate -m %s -p 'The' -n 2 --no-perf --backend cpu --check-tensors", tiny);
    CHECK(run(a) == 0 && strstr(g_err, "hold only finite numbers"), "--check-tensors on a good model: %s", g_err);
    char q8[512];
    test_fixture(q8, sizeof q8, "tiny-rwkv7-834K/tiny-rwkv7-834K-Q8_0.gguf");
    snprintf(a, sizeof a, "generate -m %s -p 'The' -n 2 --no-perf --backend cpu --check-tensors", q8);
    CHECK(run(a) == 0 && strstr(g_err, "hold only finite numbers"), "--check-tensors on a Q8_0 model: %s", g_err);
    unlink(nan_model);
    unlink(out);
}

/* Issue 16.8, 16.11: the exit-code table (0 ok, 1 runtime, 2 usage or input) for every command,
 * numeric options checked before any model work, output paths checked for writability first. */
static void test_exit_codes(const char *tiny) {
    char a[2048];
    static const char *bad_numbers[] = {
        "generate -n -5", "generate -n abc", "generate -n 1e3", "generate -t -2", "generate --temp nan", "generate --temp inf",
        "generate --top-k -1", "generate --top-p 1.5", "generate --min-p -0.1", "generate --repeat-penalty 0",
        "generate --repeat-last-n -3", "generate --presence-penalty inf", "generate --frequency-penalty nan",
        "generate --penalty-decay 2", "generate -s -1", "chat -n -2", "chat --temp nan", "chat -t -1",
        "logits -t -4 --tokens 1 -o /tmp/x.f32", "batch --parallel -1 -i x -o y", "batch -n -3 -i x -o y",
        "batch --chunk 0 -i x -o y", "batch --max-line 5 -i x -o y", "batch --top-p 7 -i x -o y", "batch -t -3 -i x -o y",
        "bench -p -5", "bench -r 0", "bench -t -1",
    };
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers[0]; i++) {
        /* generate and chat get "-n 1" first (the bad value, later, wins), so a value that is
         * wrongly accepted ends the run quickly instead of generating without end */
        const char *sp = strchr(bad_numbers[i], ' ');
        bool gen = !strncmp(bad_numbers[i], "generate", 8) || !strncmp(bad_numbers[i], "chat", 4);
        snprintf(a, sizeof a, "%.*s -m %s%s%s < /dev/null", (int)(sp - bad_numbers[i]), bad_numbers[i], tiny, gen ? " -n 1" : "", sp);
        int rc = run(a);
        CHECK(rc == 2 && count_lines(g_err) == 1, "'%s': rc %d, stderr '%s'", bad_numbers[i], rc, g_err);
    }
    /* an unwritable --state-out or -o fails before the model is loaded (no load line, no output) */
    snprintf(a, sizeof a, "generate -m %s -p hi -n 4 --state-out /nonexistent/dir/s.gguf", tiny);
    CHECK(run(a) == 2 && strstr(g_err, "cannot write '/nonexistent/dir/s.gguf'") && count_lines(g_err) == 1 && !g_out[0],
          "unwritable --state-out: %s", g_err);
    snprintf(a, sizeof a, "logits -m %s --tokens 1 -o /nonexistent/dir/l.f32", tiny);
    CHECK(run(a) == 2 && strstr(g_err, "cannot write") && count_lines(g_err) == 1, "unwritable -o: %s", g_err);
    snprintf(a, sizeof a, "chat -m %s --state-out /tmp < /dev/null", tiny);
    CHECK(run(a) == 2 && strstr(g_err, "folder") && count_lines(g_err) == 1, "a folder as --state-out: %s", g_err);
    /* error messages show control bytes escaped, never raw */
    CHECK(run("generate --frob\"$(printf '\\033')\"[31m") == 2 && !strchr(g_err, 0x1b) && strstr(g_err, "\\x1b"), "escaped: %s", g_err);
    snprintf(a, sizeof a, "generate -m %s -n \"4$(printf '\\033')[2J\"", tiny);
    CHECK(run(a) == 2 && !strchr(g_err, 0x1b) && strstr(g_err, "\\x1b"), "escaped value: %s", g_err);
    CHECK(run("info -m \"/nonexistent/$(printf '\\033')[31mred.gguf\"") == 2 && !strchr(g_err, 0x1b) && strstr(g_err, "\\x1b"),
          "escaped path: %s", g_err);
    /* the exit-code table, command by command: 0 ok, 2 usage/input, 1 runtime */
    struct { const char *args; int rc; } table[] = {
        {"--help", 0}, {"--version", 0}, {"devices", 0}, {"info -m TINY", 0}, {"tokenize -m TINY -p hi", 0},
        {"generate -m TINY -p hi -n 2 --no-perf", 0}, {"logits -m TINY --tokens 1 -o /dev/null", 0},
        {"generate -m TINY -p hi -n 0 --no-perf", 0}, /* issue 16.7: fwrite(NULL, 1, 0) under UBSan */
        {"chat -m TINY -n 2 < /dev/null", 0}, {"bench --help", 0},
        {"info -m /nonexistent.gguf", 2}, {"tokenize -m /nonexistent.gguf -p x", 2}, {"generate -m /nonexistent.gguf", 2},
        {"logits -m /nonexistent.gguf --tokens 1 -o /dev/null", 2}, {"chat -m /nonexistent.gguf", 2},
        {"batch -m TINY -i /nonexistent.jsonl -o /dev/null", 2}, {"bench -m /nonexistent.gguf", 2}, {"devices --frob", 2},
        {"generate -m TINY -f /nonexistent.txt", 2}, {"generate -m TINY --state-in /nonexistent.gguf -n 1", 2},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char args[512] = "";
        const char *at = strstr(table[i].args, "TINY");
        if (at) snprintf(args, sizeof args, "%.*s%s%s", (int)(at - table[i].args), table[i].args, tiny, at + 4);
        else snprintf(args, sizeof args, "%s", table[i].args);
        int rc = run(args);
        CHECK(rc == table[i].rc, "'%s': exit %d, want %d (%s)", table[i].args, rc, table[i].rc, g_err);
    }
    /* runtime failures exit 1: a model computing NaN (test_non_finite_weights), a failed write */
    if (test_path_exists("/dev/full")) {
        snprintf(a, sizeof a, "logits -m %s --tokens 1 -o /dev/full", tiny);
        CHECK(run(a) == 1 && strstr(g_err, "cannot write"), "a failed write exits 1: %s", g_err);
    }
    /* a byte-order mark opening a prompt file is skipped */
    char bom[64];
    snprintf(bom, sizeof bom, "/tmp/rwkv7_cli_bom.%d.txt", (int)getpid());
    FILE *f = fopen(bom, "wb");
    if (f) {
        fputs("\xEF\xBB\xBFThe", f);
        fclose(f);
    }
    snprintf(a, sizeof a, "tokenize -m %s -f %s --ids", tiny, bom);
    int rc = run(a);
    char plain[sizeof g_out];
    snprintf(plain, sizeof plain, "%s", g_out);
    snprintf(a, sizeof a, "tokenize -m %s -p The --ids", tiny);
    CHECK(rc == 0 && run(a) == 0 && !strcmp(plain, g_out), "BOM skipped in a prompt file: '%s' vs '%s'", plain, g_out);
    unlink(bom);
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
    test_non_finite_weights(tiny);
    test_exit_codes(tiny);
    return test_finish("test_cli");
}
