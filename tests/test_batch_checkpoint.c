/* test_batch_checkpoint.c: `rwkv7 batch` checkpoints of requests in flight (OUT.inflight) through
 * the CLI (RWKV7_CLI_PATH) on the tiny fixture. Long seeded generations (penalties and stop
 * strings on, so the sampler's and the matcher's saved state matter) are stopped by SIGTERM at
 * random moments and resumed until done: every text must equal an uninterrupted run's, byte for
 * byte, with each request once; the runs must have continued requests (else the test proves
 * nothing). A corrupt, truncated or foreign sidecar gives one warning line and fresh starts with
 * the same texts. --max-runtime stops and checkpoints like SIGTERM; --checkpoint-every survives
 * SIGKILL. On CPU always; on Vulkan (lavapipe here) when a device exists. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

#include "json.h"

static char g_dir[200], g_tiny[512];

static void path_of(char *p, size_t cap, const char *name) { snprintf(p, cap, "%s/%s", g_dir, name); }

static char *read_all(const char *name, size_t *n) {
    char p[512];
    path_of(p, sizeof p, name);
    *n = 0;
    return test_read_file(p, n);
}

static void write_bytes(const char *name, const void *b, size_t n) {
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n) fwrite(b, 1, n, f);
        fclose(f);
    }
}

static bool exists(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    struct stat st;
    return stat(p, &st) == 0;
}

static void remove_file(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    unlink(p);
}

/* The batch command line (into argv storage) for in/out with extra options. */
static void command(char *cmd, size_t cap, const char *in, const char *out, const char *extra, const char *err) {
    snprintf(cmd, cap, "exec '%s' batch -m '%s' -i '%s/%s' -o '%s/%s' --no-progress --parallel 4 --seed 11 --ignore-eos "
             "--presence-penalty 0.3 --frequency-penalty 0.2 %s 2>>'%s/%s'", RWKV7_CLI_PATH, g_tiny, g_dir, in, g_dir, out,
             extra, g_dir, err);
}

static int run_batch(const char *in, const char *out, const char *extra, const char *err) {
    char cmd[4096];
    command(cmd, sizeof cmd, in, out, extra, err);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Starts the batch, sends sig ms milliseconds after it starts work (its first stderr line) or
 * after wait_file appears (if not NULL), if still running; returns the exit code. */
static int run_and_signal(const char *in, const char *out, const char *extra, const char *err, long ms, int sig,
                          const char *wait_file) {
    char cmd[4096];
    command(cmd, sizeof cmd, in, out, extra, err);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return -1;
    int status = 0;
    /* Count from the run's first stderr line (printed once the model is loaded), so the kill
     * lands during generation however slow the load is on a busy machine. */
    char ep[512];
    path_of(ep, sizeof ep, err);
    struct stat st;
    off_t before = stat(ep, &st) == 0 ? st.st_size : 0;
    char wp[512];
    if (wait_file) path_of(wp, sizeof wp, wait_file);
    for (int i = 0; i < 6000 && !(wait_file ? stat(wp, &st) == 0 : stat(ep, &st) == 0 && st.st_size > before); i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (long waited = 0; waited < ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, sig);
    if (waitpid(pid, &status, 0) != pid) return -1;
    /* On a loaded machine the signal can come before the handler is installed (model load):
     * the run then dies from it with nothing in flight, as a stop before any work would. */
    if (WIFSIGNALED(status) && WTERMSIG(status) == sig) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_and_term(const char *in, const char *out, const char *extra, const char *err, long ms) {
    return run_and_signal(in, out, extra, err, ms, SIGTERM, NULL);
}

/* Texts by custom_id "c<i>" of an output file; counts how often each id occurs. */
struct texts {
    char *t[64];
    int count[64];
    int bad;
};

static void read_texts(const char *name, struct texts *x) {
    memset(x, 0, sizeof *x);
    size_t n = 0;
    char *text = read_all(name, &n);
    for (size_t a = 0; text && a < n;) {
        char *nl = memchr(text + a, '\n', n - a);
        size_t len = nl ? (size_t)(nl - text - a) : n - a;
        struct json_value v;
        if (json_parse(text + a, len, NULL, &v) == RWKV7_OK) {
            const struct json_value *id = json_get(&v, "custom_id");
            const struct json_value *ch = json_get(json_get(json_get(&v, "response"), "body"), "choices");
            const struct json_value *t = ch && ch->type == JSON_ARRAY && ch->len == 1 ? json_get(&ch->items[0], "text") : NULL;
            int i = id && id->type == JSON_STRING && id->str[0] == 'c' ? atoi(id->str + 1) : -1;
            if (i >= 0 && i < 64 && t && t->type == JSON_STRING) {
                x->count[i]++;
                free(x->t[i]);
                x->t[i] = strdup(t->str);
            } else {
                x->bad++;
            }
            json_free(&v);
        } else {
            x->bad++;
        }
        a += len + 1;
    }
    free(text);
}

static void free_texts(struct texts *x) {
    for (int i = 0; i < 64; i++) free(x->t[i]);
}

/* Every request once, each text equal to the reference's. */
static void check_same(const struct texts *ref, const char *name, int n_req, const char *what) {
    struct texts x;
    read_texts(name, &x);
    CHECK(x.bad == 0, "%s: %d unreadable records", what, x.bad);
    for (int i = 0; i < n_req; i++) {
        CHECK(x.count[i] == 1, "%s: request c%d has %d records", what, i, x.count[i]);
        CHECK(x.t[i] && ref->t[i] && !strcmp(x.t[i], ref->t[i]), "%s: text of c%d differs from the uninterrupted run", what, i);
    }
    free_texts(&x);
}

static int count_lines_with(const char *name, const char *needle) {
    size_t n = 0;
    char *b = read_all(name, &n), *t = b ? realloc(b, n + 1) : NULL; /* test_read_file: no terminator */
    if (!t) free(b);
    if (t) t[n] = 0;
    int c = 0;
    for (char *p = t; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) c++;
    free(t);
    return c;
}

static void write_input(const char *name, int n_req, int n_tok) {
    char *in = malloc((size_t)n_req * 300), *p = in;
    for (int i = 0; i < n_req; i++)
        p += sprintf(p, "{\"custom_id\":\"c%d\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"Chapter %d. It was a %s\","
                        "\"max_tokens\":%d,\"stop\":[\"zzq\",\"\\n\\n\\n\"]}}\n",
                     i, i, i % 2 ? "dark and stormy night" : "bright cold day in April", n_tok + 13 * i);
    write_bytes(name, in, (size_t)(p - in));
    free(in);
}

/* SIGTERM at random moments (at most max_kills times), then --resume, until a run finishes. */
static void sigterm_loop(const char *backend, const struct texts *ref, int n_req, long min_ms, long span_ms, int max_kills) {
    char out[64], err[64], extra[128];
    snprintf(out, sizeof out, "term.%s.out", backend);
    snprintf(err, sizeof err, "term.%s.err", backend);
    snprintf(extra, sizeof extra, "--backend %s --resume", backend);
    remove_file(out);
    remove_file(err);
    struct test_rng rng = {0x9e3779b97f4a7c15ull ^ (unsigned long long)time(NULL)};
    int rc = -1, runs = 0;
    while (rc != 0 && runs < 40) {
        long ms = runs < max_kills ? min_ms + (long)(test_rng_next(&rng) % (unsigned long long)span_ms) : 1000000;
        rc = run_and_term("ck.jsonl", out, extra, err, ms);
        CHECK(rc == 0 || rc == 1, "%s: run %d exit code %d", backend, runs, rc);
        if (rc != 0 && rc != 1) return;
        runs++;
    }
    CHECK(rc == 0, "%s: not done after %d interrupted runs", backend, runs);
    int saved = count_lines_with(err, "checkpointed"), continued = count_lines_with(err, "continued ");
    fprintf(stderr, "test_batch_checkpoint: %s: %d runs, %d checkpoints, %d resumes that continued requests\n", backend, runs,
            saved, continued);
    CHECK(saved >= 1 && continued >= 1, "%s: no request was checkpointed and continued (%d, %d)", backend, saved, continued);
    CHECK(count_lines_with(err, "warning") == 0, "%s: warnings in %s", backend, err);
    CHECK(!exists("term.cpu.out.inflight") || strcmp(backend, "cpu"), "the sidecar is removed when all is done");
    char what[64];
    snprintf(what, sizeof what, "%s SIGTERM/--resume", backend);
    check_same(ref, out, n_req, what);
}

/* A sidecar made unusable (how: corrupt/truncate/foreign): one warning, all texts still right. */
static void bad_sidecar(const struct texts *ref, int n_req, const char *how) {
    remove_file("bad.out");
    remove_file("bad.out.inflight");
    remove_file("bad.err");
    int rc = run_batch("ck.jsonl", "bad.out", "--backend cpu --max-requests 2", "bad.err");
    CHECK(rc == 0 && exists("bad.out.inflight"), "%s: a stopped run leaves a sidecar (rc %d)", how, rc);
    size_t n = 0;
    unsigned char *b = (unsigned char *)read_all("bad.out.inflight", &n);
    if (!b || n < 200) {
        CHECK(0, "%s: sidecar of %zu bytes", how, n);
        free(b);
        return;
    }

    if (!strcmp(how, "corrupt")) {
        b[n / 2] ^= 0x40;
        write_bytes("bad.out.inflight", b, n);
    } else if (!strcmp(how, "truncated")) {
        write_bytes("bad.out.inflight", b, n / 3);
    } else if (!strcmp(how, "empty")) {
        write_bytes("bad.out.inflight", b, 0);
    } else {
        /* Written for another input file (the same requests and one more line): its entries name
         * the same lines and custom_ids, so only the file's id keeps them out. */
        size_t n_in = 0;
        char *in = read_all("ck.jsonl", &n_in), *in2 = in ? malloc(n_in + 64) : NULL;
        if (in2) {
            memcpy(in2, in, n_in);
            const char *more = "{\"custom_id\":\"x\",\"body\":{\"prompt\":\"x\"}}\n";
            memcpy(in2 + n_in, more, strlen(more));
            write_bytes("ck2.jsonl", in2, n_in + strlen(more));
        }
        free(in);
        free(in2);
        remove_file("f.out");
        remove_file("f.out.inflight");
        rc = run_batch("ck2.jsonl", "f.out", "--backend cpu --max-requests 2", "f.err");
        size_t n2 = 0;
        char *b2 = read_all("f.out.inflight", &n2);
        CHECK(rc == 0 && b2 && n2 > 200, "foreign: the other input's sidecar");
        if (b2) write_bytes("bad.out.inflight", b2, n2);
        free(b2);
    }
    free(b);
    rc = run_batch("ck.jsonl", "bad.out", "--backend cpu --resume", "bad.err");
    CHECK(rc == 0, "%s: resume exits 0, got %d", how, rc);
    CHECK(count_lines_with("bad.err", "warning: ignoring checkpoint") == 1, "%s: want one warning line", how);
    CHECK(count_lines_with("bad.err", "warning") == 1, "%s: want only one warning", how);
    CHECK(count_lines_with("bad.err", "continued ") == 0, "%s: nothing may be continued", how);
    char what[64];
    snprintf(what, sizeof what, "%s sidecar", how);
    check_same(ref, "bad.out", n_req, what);
}

int main(void) {
    test_fixture(g_tiny, sizeof g_tiny, "tiny-rwkv7-834K/tiny-rwkv7-834K-Q8_0.gguf");
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    /* Every step of every run sleeps 8 ms (about 3 s per whole run), so the timed stops below
     * (--max-runtime 1.5, SIGKILL at 0.5 s, SIGTERM at 0.1-1.6 s) land mid-run on any machine. */
    setenv("RWKV7_BATCH_STEP_DELAY_MS", "8", 1);
    snprintf(g_dir, sizeof g_dir, "/tmp/rwkv7_test_ckpt_XXXXXX");
    if (!mkdtemp(g_dir)) TEST_SKIP("cannot make a temporary folder");
    const int n_req = 8;
    write_input("ck.jsonl", n_req, 120);
    struct texts ref;
    CHECK(run_batch("ck.jsonl", "ref.out", "--backend cpu", "ref.err") == 0, "uninterrupted run");
    read_texts("ref.out", &ref);
    for (int i = 0; i < n_req; i++) CHECK(ref.count[i] == 1 && ref.t[i] && strlen(ref.t[i]) > 100, "reference c%d", i);
    CHECK(!exists("ref.out.inflight"), "an uninterrupted run leaves no sidecar");

    /* Deterministic: --max-requests stops like a signal, with requests in flight. */
    CHECK(run_batch("ck.jsonl", "mr.out", "--backend cpu --max-requests 1", "mr.err") == 0, "--max-requests run");
    CHECK(exists("mr.out.inflight") && count_lines_with("mr.err", "checkpointed 3 requests") == 1,
          "a stop after 1 record checkpoints the 3 requests in flight");
    CHECK(run_batch("ck.jsonl", "mr.out", "--backend cpu --resume --max-requests 2", "mr.err") == 0, "second stop");
    CHECK(run_batch("ck.jsonl", "mr.out", "--backend cpu --resume", "mr.err") == 0, "final resume");
    CHECK(count_lines_with("mr.err", "continued 3 requests") == 2, "both resumes continued 3 requests");
    check_same(&ref, "mr.out", n_req, "--max-requests/--resume");
    CHECK(!exists("mr.out.inflight"), "the sidecar is removed when all is done");

    /* --max-runtime stops like SIGTERM (exit 1) and checkpoints. */
    CHECK(run_batch("ck.jsonl", "rt.out", "--backend cpu --max-runtime 1.5", "rt.err") == 1, "--max-runtime exits 1");
    CHECK(count_lines_with("rt.err", "stopped by --max-runtime; checkpointed") == 1 && exists("rt.out.inflight"),
          "--max-runtime checkpoints");
    CHECK(run_batch("ck.jsonl", "rt.out", "--backend cpu --resume", "rt.err") == 0, "resume after --max-runtime");
    check_same(&ref, "rt.out", n_req, "--max-runtime/--resume");
    /* --checkpoint-every survives SIGKILL: the periodic sidecar is continued. */
    CHECK(run_and_signal("ck.jsonl", "ev.out", "--backend cpu --checkpoint-every 0.3", "ev.err", 500, SIGKILL,
                         "ev.out.inflight") == 1,
          "SIGKILL during a --checkpoint-every run");
    CHECK(exists("ev.out.inflight"), "a periodic sidecar exists after SIGKILL");
    CHECK(run_batch("ck.jsonl", "ev.out", "--backend cpu --resume", "ev.err") == 0, "resume after SIGKILL");
    CHECK(count_lines_with("ev.err", "continued ") == 1, "the periodic checkpoint was continued");
    check_same(&ref, "ev.out", n_req, "--checkpoint-every/SIGKILL/--resume");

    sigterm_loop("cpu", &ref, n_req, 100, 1500, 10);
    bad_sidecar(&ref, n_req, "corrupt");
    bad_sidecar(&ref, n_req, "truncated");
    bad_sidecar(&ref, n_req, "empty");
    bad_sidecar(&ref, n_req, "foreign");
    free_texts(&ref);

    /* Vulkan (lavapipe here): against its own uninterrupted run (batch-invariant mode). */
    write_input("ck.jsonl", 4, 30);
    if (run_batch("ck.jsonl", "vref.out", "--backend vulkan", "vref.err") == 0) {
        struct texts vref;
        read_texts("vref.out", &vref);
        sigterm_loop("vulkan", &vref, 4, 100, 2500, 3);
        free_texts(&vref);
    } else {
        fprintf(stderr, "test_batch_checkpoint: no usable Vulkan device; skipping the Vulkan part\n");
    }

    if (g_test_failures == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "test_batch_checkpoint: could not remove %s\n", g_dir);
    } else {
        fprintf(stderr, "test_batch_checkpoint: files kept in %s\n", g_dir);
    }
    return test_finish("test_batch_checkpoint");
}
