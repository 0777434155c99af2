/* test_batch.c: `rwkv7 batch` end to end through the CLI (RWKV7_CLI_PATH) on the fixture models:
 * one output line per input line even with bad lines, stop strings and max_tokens, resume after
 * an interrupted run (no duplicates, a truncated last line cut), batch invariance (a seeded
 * request alone == among 63 others, on the CPU and on Vulkan when a device exists), and the exact
 * RWKV chat prompt (usage.prompt_tokens == tokens of the expected rendering). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <math.h>

#include "gguf.h"
#include "testing.h"

#include "json.h"

static char g_dir[200], g_tiny[512], g_world[512];

static void write_file(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A whole file as a NUL-terminated string (test_read_file's buffer has no terminator). */
static char *read_text(const char *path) {
    size_t n = 0;
    char *b = test_read_file(path, &n), *t = b ? realloc(b, n + 1) : NULL;
    if (!t) {
        free(b);
        return NULL;
    }
    t[n] = 0;
    return t;
}

/* Runs `rwkv7 batch -m model -i dir/in -o dir/out extra` and returns its exit code. */
static int run_batch(const char *model, const char *in, const char *out, const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' batch -m '%s' -i '%s/%s' -o '%s/%s' --no-progress %s 2>>'%s/stderr.txt'", RWKV7_CLI_PATH,
             model, g_dir, in, g_dir, out, extra, g_dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct records {
    struct json_value v[256];
    int n;
    int bad; /* lines that are not valid JSON */
};

static void read_records(const char *name, struct records *r) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    memset(r, 0, sizeof *r);
    size_t n = 0;
    char *text = test_read_file(p, &n);
    for (size_t a = 0; text && a < n;) {
        char *nl = memchr(text + a, '\n', n - a);
        size_t len = nl ? (size_t)(nl - text - a) : n - a;
        if (r->n < 256 && json_parse(text + a, len, NULL, &r->v[r->n]) == RWKV7_OK) r->n++;
        else r->bad++;
        a += len + 1;
    }
    free(text);
}

static void free_records(struct records *r) {
    for (int i = 0; i < r->n; i++) json_free(&r->v[i]);
}

static const struct json_value *find(const struct records *r, const char *custom_id) {
    for (int i = 0; i < r->n; i++) {
        const struct json_value *c = json_get(&r->v[i], "custom_id");
        if (c && c->type == JSON_STRING && !strcmp(c->str, custom_id)) return &r->v[i];
    }
    return NULL;
}

static int status_of(const struct json_value *rec) {
    const struct json_value *s = json_get(json_get(rec, "response"), "status_code");
    return s && s->is_int ? (int)s->i : -1;
}

static const struct json_value *choice(const struct json_value *rec) {
    const struct json_value *ch = json_get(json_get(json_get(rec, "response"), "body"), "choices");
    return ch && ch->type == JSON_ARRAY && ch->len == 1 ? &ch->items[0] : NULL;
}

static const char *text_of(const struct json_value *rec) {
    const struct json_value *c = choice(rec), *t = json_get(c, "text");
    if (!t) t = json_get(json_get(c, "message"), "content");
    return t && t->type == JSON_STRING ? t->str : NULL;
}

static const char *finish_of(const struct json_value *rec) {
    const struct json_value *f = json_get(choice(rec), "finish_reason");
    return f && f->type == JSON_STRING ? f->str : "";
}

static long usage_of(const struct json_value *rec, const char *key) {
    const struct json_value *u = json_get(json_get(json_get(json_get(rec, "response"), "body"), "usage"), key);
    return u && u->is_int ? (long)u->i : -1;
}

static void test_bad_lines(void) {
    write_file("bad.jsonl",
               "{\"custom_id\":\"ok1\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The \",\"max_tokens\":4}}\n"
               "this is not json\n"
               "{\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}\n"
               "{\"custom_id\":\"badurl\",\"url\":\"/v1/embeddings\",\"body\":{\"input\":\"x\"}}\n"
               "\n"
               "{\"custom_id\":\"badtemp\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\",\"temperature\":\"hot\"}}\n"
               "{\"custom_id\":\"long\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"a prompt far over the limit\"}}\n"
               "{\"custom_id\":\"ok2\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"Once\",\"max_tokens\":3}}\n"
               "{\"custom_id\":\"ok1\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"dup\"}}\n"
               "{\"custom_id\":\"trunc\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"\n");
    int rc = run_batch(g_tiny, "bad.jsonl", "bad.out", "--backend cpu --max-prompt-tokens 16");
    CHECK(rc == 0, "batch with bad lines exits 0, got %d", rc);
    struct records r;
    read_records("bad.out", &r);
    CHECK(r.n == 9 && r.bad == 0, "9 non-blank input lines -> 9 records, got %d (+%d unreadable)", r.n, r.bad);
    int errors = 0, nulls = 0;
    for (int i = 0; i < r.n; i++) {
        if (status_of(&r.v[i]) == 400) {
            const struct json_value *e = json_get(&r.v[i], "error");
            CHECK(e && json_get(e, "message") && json_get(e, "message")->type == JSON_STRING, "error record has a message");
            errors++;
        }
        const struct json_value *c = json_get(&r.v[i], "custom_id");
        nulls += c && c->type == JSON_NULL;
    }
    CHECK(errors == 7, "7 error records, got %d", errors);
    CHECK(nulls == 3, "3 records without a readable custom_id (non-JSON, missing, truncated), got %d", nulls);
    CHECK(status_of(find(&r, "ok2")) == 200 && usage_of(find(&r, "ok2"), "completion_tokens") <= 3, "ok2 ran");
    CHECK(status_of(find(&r, "badtemp")) == 400 && status_of(find(&r, "badurl")) == 400 && status_of(find(&r, "long")) == 400,
          "bad temperature, url, over-long prompt are 400");
    const struct json_value *lm = json_get(json_get(find(&r, "long"), "error"), "message");
    CHECK(lm && strstr(lm->str, "over the limit"), "over-long prompt message");
    int ok1 = 0;
    for (int i = 0; i < r.n; i++) {
        const struct json_value *c = json_get(&r.v[i], "custom_id");
        if (c && c->type == JSON_STRING && !strcmp(c->str, "ok1")) ok1 += status_of(&r.v[i]) == 200 ? 1 : 100;
    }
    CHECK(ok1 == 101, "duplicate custom_id: first runs, later one is an error (%d)", ok1);
    free_records(&r);
    /* A non-empty output is not overwritten without --resume or --overwrite. */
    CHECK(run_batch(g_tiny, "bad.jsonl", "bad.out", "--backend cpu") == 2, "refuses to overwrite");
}

static void test_stops(void) {
    write_file("stop1.jsonl",
               "{\"custom_id\":\"free\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The quick brown\",\"temperature\":0,\"max_tokens\":24}}\n"
               "{\"custom_id\":\"five\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The quick brown\",\"temperature\":0,\"max_tokens\":5}}\n");
    CHECK(run_batch(g_tiny, "stop1.jsonl", "stop1.out", "--backend cpu --ignore-eos") == 0, "stop run 1");
    struct records r;
    read_records("stop1.out", &r);
    const char *full = text_of(find(&r, "free"));
    CHECK(full && strlen(full) >= 8, "greedy text: '%s'", full ? full : "(none)");
    CHECK(!strcmp(finish_of(find(&r, "five")), "length") && usage_of(find(&r, "five"), "completion_tokens") == 5,
          "max_tokens 5 -> length after 5 tokens");
    if (full && strlen(full) >= 8) {
        /* Stop at a 2-byte piece of the greedy text: the output must be the text before its first
         * occurrence, with finish_reason "stop". */
        char stop[3] = {full[4], full[5], 0};
        bool ascii = (unsigned char)stop[0] < 0x80 && (unsigned char)stop[1] < 0x80 && stop[0] != '"' && stop[1] != '"' &&
                     stop[0] != '\\' && stop[1] != '\\' && stop[0] >= 0x20 && stop[1] >= 0x20;
        CHECK(ascii, "greedy text is plain ASCII here: '%s'", full);
        if (ascii) {
            char in[512];
            snprintf(in, sizeof in,
                     "{\"custom_id\":\"s\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The quick brown\",\"temperature\":0,"
                     "\"max_tokens\":24,\"stop\":[\"zzzz\",\"%s\"]}}\n",
                     stop);
            write_file("stop2.jsonl", in);
            CHECK(run_batch(g_tiny, "stop2.jsonl", "stop2.out", "--backend cpu --ignore-eos") == 0, "stop run 2");
            struct records r2;
            read_records("stop2.out", &r2);
            const char *t = text_of(find(&r2, "s"));
            size_t want = (size_t)(strstr(full, stop) - full);
            CHECK(t && strlen(t) == want && !strncmp(t, full, want), "stopped text '%s' vs '%.*s'", t ? t : "", (int)want, full);
            CHECK(!strcmp(finish_of(find(&r2, "s")), "stop"), "finish_reason stop");
            free_records(&r2);
        }
    }
    free_records(&r);
}

static void test_resume(void) {
    char *in = malloc(40 * 200), *p = in;
    for (int i = 0; i < 40; i++)
        p += sprintf(p, "{\"custom_id\":\"req-%02d\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"Line %d:\",\"max_tokens\":%d}}\n",
                     i, i, 4 + i % 7);
    write_file("res.jsonl", in);
    free(in);
    int rc = run_batch(g_tiny, "res.jsonl", "res.out", "--backend cpu --parallel 8 --seed 5 --max-requests 6");
    CHECK(rc == 0, "--max-requests run exits 0, got %d", rc);
    struct records r;
    read_records("res.out", &r);
    CHECK(r.n == 6, "stopped after 6 records, got %d", r.n);
    free_records(&r);
    /* Simulate a kill in the middle of a write: a partial line without its newline. */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/res.out", g_dir);
    FILE *f = fopen(p2, "ab");
    if (f) {
        fputs("{\"id\":\"batch_req_39\",\"custom_id\":\"req-39\",\"resp", f);
        fclose(f);
    }
    rc = run_batch(g_tiny, "res.jsonl", "res.out", "--backend cpu --parallel 8 --seed 5 --resume");
    CHECK(rc == 0, "--resume run exits 0, got %d", rc);
    read_records("res.out", &r);
    CHECK(r.n == 40 && r.bad == 0, "resumed file has 40 records, got %d (+%d unreadable)", r.n, r.bad);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "req-%02d", i);
        int count = 0;
        for (int k = 0; k < r.n; k++) {
            const struct json_value *c = json_get(&r.v[k], "custom_id");
            count += c && c->type == JSON_STRING && !strcmp(c->str, id);
        }
        CHECK(count == 1, "%s appears %d times", id, count);
    }
    free_records(&r);
    /* Resuming a complete file writes nothing more. */
    CHECK(run_batch(g_tiny, "res.jsonl", "res.out", "--backend cpu --resume") == 0, "resume of a finished file");
    read_records("res.out", &r);
    CHECK(r.n == 40, "still 40 records, got %d", r.n);
    free_records(&r);
}

/* The same seeded request alone and as one of 64 (mixed prompt lengths spanning several prefill
 * chunks, mixed max_tokens): identical text. With full, also through 4 slots so that requests
 * restore shared prefixes from the prefix cache. n_gen bounds the generated tokens (lavapipe is
 * slow). Returns false when the backend is unavailable. */
static bool check_invariance(const char *backend, bool full, int n_gen) {
    char target[512];
    snprintf(target, sizeof target,
             "{\"custom_id\":\"target\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The old man looked at the sea "
             "and said nothing for a long while.\",\"temperature\":1.0,\"top_k\":0,\"top_p\":1,\"min_p\":0,"
             "\"seed\":1234,\"max_tokens\":%d,\"ignore_eos\":true}}\n",
             n_gen);
    write_file("inv1.jsonl", target);
    char extra[128], out1[32], out64[32];
    snprintf(extra, sizeof extra, "--backend %s --parallel 1 --chunk 16", backend);
    snprintf(out1, sizeof out1, "inv1.%s.out", backend);
    snprintf(out64, sizeof out64, "inv64.%s.out", backend);
    if (run_batch(g_tiny, "inv1.jsonl", out1, extra) != 0) return false;
    char *in = malloc(64 * 400), *p = in;
    for (int i = 0; i < 64; i++) {
        if (i == 37) {
            p += sprintf(p, "%s", target);
            continue;
        }
        /* Every third shares the target's first 3 chunks, so later admissions hit the prefix cache. */
        int len = 1 + (i * 13) % 70;
        const char *text = i % 3 ? "Some other text that differs in length from line to line, so that chunks mix."
                                 : "The old man looked at the sea and said nothing for a long while, and then he spoke.";
        if (i % 3 == 0) len = 50 + i % 30;
        if (!full) len = 1 + i % 16; /* one prefill chunk each: few eval calls on a slow device */
        p += sprintf(p, "{\"custom_id\":\"o%d\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"%.*s\",\"temperature\":0.9,\"seed\":%d,"
                        "\"max_tokens\":%d}}\n",
                     i, len, text, i, 1 + i % n_gen);
    }
    write_file("inv64.jsonl", in);
    free(in);
    snprintf(extra, sizeof extra, "--backend %s --parallel 64 --chunk 16", backend);
    CHECK(run_batch(g_tiny, "inv64.jsonl", out64, extra) == 0, "%s: 64-request run", backend);
    struct records a, b, c;
    read_records(out1, &a);
    read_records(out64, &b);
    const char *ta = text_of(find(&a, "target")), *tb = text_of(find(&b, "target"));
    CHECK(b.n == 64, "%s: 64 records, got %d", backend, b.n);
    CHECK(ta && tb && !strcmp(ta, tb), "%s: batch invariance: alone '%s' vs among 63 '%s'", backend, ta ? ta : "", tb ? tb : "");
    CHECK(usage_of(find(&a, "target"), "completion_tokens") == n_gen, "%s: target generated %d tokens", backend, n_gen);
    if (!full) {
        free_records(&a);
        free_records(&b);
        return true;
    }
    /* Few slots: requests are admitted after others stored shared prefixes in the cache. */
    char out4[32], err[300];
    snprintf(out4, sizeof out4, "inv4.%s.out", backend);
    snprintf(err, sizeof err, "%s/stderr.txt", g_dir);
    remove(err);
    snprintf(extra, sizeof extra, "--backend %s --parallel 4 --chunk 16", backend);
    CHECK(run_batch(g_tiny, "inv64.jsonl", out4, extra) == 0, "%s: 64 requests through 4 slots", backend);
    char *log = read_text(err);
    CHECK(log && strstr(log, "from the prefix cache") && !strstr(log, " + 0 from the prefix cache"), "%s: prefix cache hits",
          backend);
    free(log);
    read_records(out4, &c);
    const char *tc = text_of(find(&c, "target"));
    CHECK(c.n == 64 && tc && text_of(find(&a, "target")) && !strcmp(tc, text_of(find(&a, "target"))),
          "%s: invariance with the prefix cache: '%s'", backend, tc ? tc : "");
    for (int i = 0; i < 64 && c.n == 64; i++) {
        char id[16];
        snprintf(id, sizeof id, "o%d", i);
        const char *x = text_of(find(&b, id)), *y = text_of(find(&c, id));
        if (i != 37) CHECK(x && y && !strcmp(x, y), "%s: %s same with 64 and 4 slots", backend, id);
    }
    free_records(&c);
    free_records(&a);
    free_records(&b);
    return true;
}

static void test_chat(void) {
    write_file("chat.jsonl",
               "{\"custom_id\":\"c1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":["
               "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\\r\\n\\n\\nthere \"},"
               "{\"role\":\"assistant\",\"content\":\"<think>x</think> Hello!\"},{\"role\":\"user\",\"content\":\"Name a colour.\"}],"
               "\"max_tokens\":8,\"temperature\":0}}\n"
               "{\"custom_id\":\"c2\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"Why?\"}],"
               "\"think\":\"fake\",\"max_tokens\":4}}\n"
               "{\"custom_id\":\"c3\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}}\n");
    CHECK(run_batch(g_world, "chat.jsonl", "chat.out", "--backend cpu") == 0, "chat run");
    struct records r;
    read_records("chat.out", &r);
    CHECK(r.n == 3, "3 chat records, got %d", r.n);
    const char *want[2] = {"System: Be brief.\\n\\nUser: Hi\\nthere\\n\\nAssistant: Hello!\\n\\nUser: Name a colour.\\n\\nAssistant:",
                           "User: Why?\\n\\nAssistant: <think>\\n</think"};
    const char *ids[2] = {"c1", "c2"};
    for (int k = 0; k < 2; k++) {
        char cmd[2400], p[300];
        snprintf(p, sizeof p, "%s/tok.txt", g_dir);
        snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' -p '%s' --ids > '%s' 2>/dev/null", RWKV7_CLI_PATH, g_world, want[k], p);
        CHECK(system(cmd) == 0, "tokenize");
        size_t n_ids = 0;
        char *ids_text = test_read_file(p, &n_ids); /* not NUL-terminated */
        long n_tok = 0;
        for (size_t i = 0; ids_text && i < n_ids; i++)
            n_tok += ids_text[i] >= '0' && ids_text[i] <= '9' && (i + 1 == n_ids || ids_text[i + 1] < '0' || ids_text[i + 1] > '9');
        free(ids_text);
        const struct json_value *rec = find(&r, ids[k]);
        CHECK(status_of(rec) == 200, "%s ran", ids[k]);
        CHECK(usage_of(rec, "prompt_tokens") == n_tok, "%s: prompt_tokens %ld == tokens of the expected rendering %ld", ids[k],
              usage_of(rec, "prompt_tokens"), n_tok);
        const struct json_value *obj = json_get(json_get(json_get(rec, "response"), "body"), "object");
        CHECK(obj && !strcmp(obj->str, "chat.completion"), "chat object");
        const char *t = text_of(rec);
        CHECK(t && !strstr(t, "\n\n"), "chat text stops before the end of turn");
    }
    CHECK(status_of(find(&r, "c3")) == 400, "unknown role is a 400");
    free_records(&r);
}

static long file_lines(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    size_t n = 0;
    char *t = test_read_file(p, &n);
    long lines = 0;
    for (size_t i = 0; t && i < n; i++) lines += t[i] == '\n';
    free(t);
    return lines;
}

/* Issue 16.1: a request whose setup ran out of memory got a 500 record that --resume took as
 * done, so it never ran; the run exited 0. Now 5xx records make the exit code 1 and --resume
 * runs those requests again and leaves exactly one record per request. */
static void test_retry_server_errors(void) {
    char in[8 * 200], *p = in;
    for (int i = 0; i < 8; i++)
        p += sprintf(p, "{\"custom_id\":\"r%d\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"Line %d:\",\"max_tokens\":3}}\n", i, i);
    write_file("retry.jsonl", in);
    setenv("RWKV7_BATCH_FAIL_LINES", "1,6", 1);
    int rc = run_batch(g_tiny, "retry.jsonl", "retry.out", "--backend cpu --parallel 4 --seed 3");
    unsetenv("RWKV7_BATCH_FAIL_LINES");
    CHECK(rc == 1, "a run that wrote 5xx records exits 1, got %d", rc);
    struct records r;
    read_records("retry.out", &r);
    CHECK(r.n == 8 && status_of(find(&r, "r1")) == 500 && status_of(find(&r, "r6")) == 500 && status_of(find(&r, "r0")) == 200,
          "8 records, r1 and r6 are 500 (%d records)", r.n);
    free_records(&r);
    rc = run_batch(g_tiny, "retry.jsonl", "retry.out", "--backend cpu --parallel 4 --seed 3 --resume");
    CHECK(rc == 0, "--resume retries the 5xx requests and exits 0, got %d", rc);
    read_records("retry.out", &r);
    CHECK(r.n == 8 && r.bad == 0 && file_lines("retry.out") == 8, "one record per request after the resume: %d (+%d), %ld lines",
          r.n, r.bad, file_lines("retry.out"));
    for (int i = 0; i < 8; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i);
        CHECK(status_of(find(&r, id)) == 200, "%s is 200 after the resume", id);
    }
    free_records(&r);
    /* 4xx records stay final: a resume of a file with a 400 runs nothing. */
    write_file("final.jsonl", "{\"custom_id\":\"bad\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\",\"top_k\":\"many\"}}\n");
    CHECK(run_batch(g_tiny, "final.jsonl", "final.out", "--backend cpu") == 0, "a 400 record exits 0");
    CHECK(run_batch(g_tiny, "final.jsonl", "final.out", "--backend cpu --resume") == 0 && file_lines("final.out") == 1,
          "a 400 record is not retried");
}

/* Issue 16.3: two runs on one OUT both appended. Now the second fails at once with exit 2, one
 * line, and changes nothing. The test holds the lock the way a running batch does. */
static void test_one_writer_per_output(void) {
    write_file("lock.jsonl", "{\"custom_id\":\"a\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\",\"max_tokens\":2}}\n");
    CHECK(run_batch(g_tiny, "lock.jsonl", "lock.out", "--backend cpu --max-requests 0") == 0, "first run");
    char p[512], err[512];
    snprintf(p, sizeof p, "%s/lock.out", g_dir);
    size_t n0 = 0;
    free(test_read_file(p, &n0));
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "test takes the lock");
    snprintf(err, sizeof err, "%s/stderr.txt", g_dir);
    unlink(err);
    int rc = run_batch(g_tiny, "lock.jsonl", "lock.out", "--backend cpu --resume");
    char *e = read_text(err);
    CHECK(rc == 2 && e && strstr(e, "is in use by another rwkv7 batch") && strchr(e, '\n') == e + strlen(e) - 1,
          "second writer: rc %d, '%s'", rc, e ? e : "");
    free(e);
    rc = run_batch(g_tiny, "lock.jsonl", "lock.out", "--backend cpu --overwrite");
    CHECK(rc == 2, "--overwrite is refused too, got %d", rc);
    size_t n1 = 0;
    free(test_read_file(p, &n1));
    CHECK(n1 == n0 && n0 > 0, "OUT unchanged (%zu -> %zu bytes)", n0, n1);
    if (fd >= 0) close(fd);
    CHECK(run_batch(g_tiny, "lock.jsonl", "lock.out", "--backend cpu --resume") == 0, "after the lock is gone");
}

/* CPU time used by finished child processes (the rwkv7 runs), so a busy machine does not count. */
static double children_cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Issue 16.2, 16.6, 16.9: hostile lines. A 10 MB line and a 200,000-key line are answered at once
 * with a 400 naming the limit; \u0000 in any string is a 400 naming the field (it used to cut the
 * string: a role "user\u0000anything" was taken as "user"); a UTF-8 byte-order mark before the
 * first line is skipped. */
static void test_hostile_lines(void) {
    size_t big = 10u << 20;
    char *in = malloc(big + 4 * 1024 * 1024);
    if (!in) return;
    char *p = in;
    p += sprintf(p, "\xEF\xBB\xBF{\"custom_id\":\"bom\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\",\"max_tokens\":2}}\n");
    p += sprintf(p, "{\"custom_id\":\"huge\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"");
    memset(p, 'a', big);
    p += big;
    p += sprintf(p, "\"}}\n{\"custom_id\":\"keys\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"");
    for (int i = 0; i < 200000; i++) p += sprintf(p, ",\"k%d\":0", i);
    p += sprintf(p, "}}\n");
    p += sprintf(p, "{\"custom_id\":\"role\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\\u0000anything\",\"content\":\"hi\"}]}}\n");
    p += sprintf(p, "{\"custom_id\":\"prompt\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"a\\u0000b\"}}\n");
    p += sprintf(p, "{\"custom_id\":\"url\",\"url\":\"/v1/completions\\u0000x\",\"body\":{\"prompt\":\"a\"}}\n");
    p += sprintf(p, "{\"custom_id\":\"ok\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"y\",\"max_tokens\":2}}\n");
    char path[512];
    snprintf(path, sizeof path, "%s/hostile.jsonl", g_dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(in, 1, (size_t)(p - in), f);
        fclose(f);
    }
    free(in);
    double t0 = children_cpu_ms();
    int rc = run_batch(g_world, "hostile.jsonl", "hostile.out", "--backend cpu");
    double ms = children_cpu_ms() - t0;
    CHECK(rc == 0, "hostile run exits 0, got %d", rc);
    /* CPU time of the whole run, model load included (sanitizer builds are several times slower;
     * the quadratic parser took 37 s for the 200,000 keys alone) */
    CHECK(ms < 10000, "hostile lines took %.0f ms of CPU", ms);
    struct records r;
    read_records("hostile.out", &r);
    CHECK(r.n == 7, "7 records, got %d", r.n);
    CHECK(status_of(find(&r, "bom")) == 200, "a byte-order mark before the first line is skipped");
    CHECK(status_of(find(&r, "ok")) == 200, "the line after them runs");
    const struct json_value *lm = NULL;
    int limit_400 = 0;
    for (int i = 0; i < r.n; i++) {
        const struct json_value *m = json_get(json_get(&r.v[i], "error"), "message");
        if (m && m->type == JSON_STRING && strstr(m->str, "--max-line")) limit_400++, lm = m;
    }
    CHECK(limit_400 == 1, "the 10 MB line is a 400 naming --max-line (%s)", lm ? lm->str : "none");
    const struct json_value *keys = NULL; /* a line that does not parse has no custom_id: found by its line */
    for (int i = 0; i < r.n; i++) {
        const struct json_value *id = json_get(&r.v[i], "id");
        if (id && id->type == JSON_STRING && !strcmp(id->str, "batch_req_2")) keys = &r.v[i];
    }
    const struct json_value *km = json_get(json_get(keys, "error"), "message");
    CHECK(status_of(keys) == 400 && km && strstr(km->str, "keys (the limit)"), "200,000 keys: %s", km ? km->str : "");
    const struct json_value *rm = json_get(json_get(find(&r, "role"), "error"), "message");
    CHECK(status_of(find(&r, "role")) == 400 && rm && strstr(rm->str, "body.messages[0].role") && strstr(rm->str, "\\u0000"),
          "NUL in a role: %s", rm ? rm->str : "");
    const struct json_value *pm = json_get(json_get(find(&r, "prompt"), "error"), "message");
    CHECK(status_of(find(&r, "prompt")) == 400 && pm && strstr(pm->str, "body.prompt"), "NUL in a prompt: %s", pm ? pm->str : "");
    CHECK(status_of(find(&r, "url")) == 400, "NUL in the url");
    free_records(&r);
}

/* Issue 16.4: a model with a NaN weight wrote 200 records with empty texts and exited 0. Now each
 * request gets a 500 record naming the non-finite logits, and the run exits 1. */
static void test_non_finite_logits(void) {
    char src[512], dst[512];
    test_fixture(src, sizeof src, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    snprintf(dst, sizeof dst, "%s/nan.gguf", g_dir);
    struct rwkv7_gguf *g = NULL;
    bool ok = rwkv7_gguf_open(src, &g) == RWKV7_OK;
    const struct rwkv7_gguf_tensor *t = ok ? rwkv7_gguf_find_tensor(g, "blk.5.time_mix_value.weight") : NULL;
    size_t off = t ? (size_t)((const char *)t->data - (const char *)rwkv7_gguf_base(g)) + 4000 : 0;
    if (g) rwkv7_gguf_free(g);
    size_t n = 0;
    char *b = t ? test_read_file(src, &n) : NULL;
    FILE *f = b ? fopen(dst, "wb") : NULL;
    CHECK(f != NULL, "write the NaN model");
    if (!f) {
        free(b);
        return;
    }
    float nan = NAN;
    memcpy(b + off, &nan, 4);
    fwrite(b, 1, n, f);
    fclose(f);
    free(b);
    write_file("nan.jsonl", "{\"custom_id\":\"a\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"The\",\"max_tokens\":4}}\n"
                            "{\"custom_id\":\"b\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"Once upon\",\"max_tokens\":4}}\n");
    int rc = run_batch(dst, "nan.jsonl", "nan.out", "--backend cpu");
    CHECK(rc == 1, "NaN weights: exit 1, got %d", rc);
    struct records r;
    read_records("nan.out", &r);
    CHECK(r.n == 2, "2 records, got %d", r.n);
    for (int i = 0; i < r.n; i++) {
        const struct json_value *m = json_get(json_get(&r.v[i], "error"), "message");
        CHECK(status_of(&r.v[i]) == 500 && m && strstr(m->str, "non-finite logits at token") && strstr(m->str, "--check-tensors"),
              "record %d: 500 naming the cause (%s)", i, m ? m->str : "no message");
    }
    free_records(&r);
}

int main(void) {
    test_fixture(g_tiny, sizeof g_tiny, "tiny-rwkv7-834K/tiny-rwkv7-834K-Q8_0.gguf");
    test_fixture(g_world, sizeof g_world, "world/world-c128-Q8_0.gguf");
    if (!test_path_exists(RWKV7_CLI_PATH)) TEST_SKIP("the rwkv7 binary %s is not built", RWKV7_CLI_PATH);
    snprintf(g_dir, sizeof g_dir, "/tmp/rwkv7_test_batch_XXXXXX");
    if (!mkdtemp(g_dir)) TEST_SKIP("cannot make a temporary folder");
    test_bad_lines();
    test_stops();
    test_resume();
    test_chat();
    test_retry_server_errors();
    test_one_writer_per_output();
    test_hostile_lines();
    test_non_finite_logits();
    check_invariance("cpu", true, 40);
    if (!check_invariance("vulkan", false, 6))
        fprintf(stderr, "test_batch: no usable Vulkan device; skipping the Vulkan batch-invariance check\n");
    char cmd[600];
    if (g_test_failures == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "test_batch: could not remove %s\n", g_dir);
    } else {
        fprintf(stderr, "test_batch: files kept in %s\n", g_dir);
    }
    return test_finish("test_batch");
}
