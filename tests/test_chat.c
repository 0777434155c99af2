/* test_chat.c: `rwkv7 chat` run through the CLI (RWKV7_CLI_PATH) with piped stdin and the tiny
 * model: one reply line per turn and exit 0; the text fed to the model (--verbose-prompt) equals
 * the one-shot chat_format rendering of the same conversation; each think mode's turn prompt,
 * by flag and by /think; replies stop at the first "\n\n" and the separator is fed; /save,
 * /reset, /load and --state-in/--state-out resume exactly; /reset takes the system prompt from
 * the prefix cache; a failed /load keeps the chat going and fails the exit code. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chat_format.h"
#include "testing.h"

static char g_tmp[256], g_model[600];

struct run_out {
    int rc;
    char *out, *err;
};

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_tmp, name); }

static char *slurp(const char *path) {
    size_t n = 0;
    char *s = test_read_file(path, &n);
    char *t = s ? realloc(s, n + 1) : NULL;
    if (!t) { free(s); return NULL; }
    t[n] = 0;
    return t;
}

/* Runs `rwkv7 chat -m tiny --backend cpu -t 1 <args>` with input as stdin. */
static struct run_out chat(const char *input, const char *args) {
    char in[400], out[400], err[400], cmd[3000];
    path_of(in, sizeof in, "in.txt");
    path_of(out, sizeof out, "out.txt");
    path_of(err, sizeof err, "err.txt");
    FILE *f = fopen(in, "wb");
    CHECK(f != NULL, "cannot write %s", in);
    if (f) {
        fputs(input, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' chat -m '%s' --backend cpu -t 1 %s < '%s' > '%s' 2> '%s'",
             RWKV7_CLI_PATH, g_model, args, in, out, err);
    int st = system(cmd);
    struct run_out r = {st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st), slurp(out), slurp(err)};
    if (!r.out) r.out = calloc(1, 1);
    if (!r.err) r.err = calloc(1, 1);
    return r;
}

static void run_free(struct run_out *r) {
    free(r->out);
    free(r->err);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Line i (0-based) of s, malloc'ed, without its newline. */
static char *line_of(const char *s, int i) {
    for (; i > 0 && *s; s++)
        if (*s == '\n') i--;
    size_t n = strcspn(s, "\n");
    char *l = malloc(n + 1);
    memcpy(l, s, n);
    l[n] = 0;
    return l;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Concatenates the quoted texts of every "rwkv7 chat: feed "..."" line of err, unescaped. */
static char *fed_text(const char *err, int *n_feeds) {
    size_t cap = strlen(err) + 1, n = 0;
    char *o = malloc(cap);
    *n_feeds = 0;
    for (const char *p = strstr(err, "rwkv7 chat: feed \""); p; p = strstr(p, "rwkv7 chat: feed \"")) {
        p += strlen("rwkv7 chat: feed \"");
        (*n_feeds)++;
        while (*p && *p != '"') {
            if (*p != '\\') { o[n++] = *p++; continue; }
            p++;
            char c = *p++;
            if (c == 'n') o[n++] = '\n';
            else if (c == 't') o[n++] = '\t';
            else if (c == 'r') o[n++] = '\r';
            else if (c == 'x' && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
                o[n++] = (char)(hexval(p[0]) * 16 + hexval(p[1]));
                p += 2;
            } else o[n++] = c;
        }
    }
    o[n] = 0;
    return o;
}

static void test_transcript(void) {
    struct run_out r = chat("Hello there.\nWhat is your name?\n",
                            "--temp 0 -n 24 -sys 'You are a storyteller.' --verbose-prompt");
    CHECK(r.rc == 0, "exit %d: %s", r.rc, r.err);
    CHECK(count_lines(r.out) == 2, "want two reply lines, got:\n%s", r.out);
    char *a1 = line_of(r.out, 0), *a2 = line_of(r.out, 1);
    CHECK(strlen(a1) > 5 && strlen(a2) > 5, "empty replies: '%s' '%s'", a1, a2);
    /* The whole conversation as a one-shot rendering, minus its final "Assistant:". */
    const struct rwkv7_chat_msg msgs[] = {
        {"user", "Hello there."}, {"assistant", a1}, {"user", "What is your name?"}, {"assistant", a2}};
    char *want = NULL;
    CHECK(rwkv7_chat_render("You are a storyteller.", msgs, 4, RWKV7_THINK_OFF, &want) == RWKV7_OK, "render");
    int n_feeds = 0;
    char *got = fed_text(r.err, &n_feeds);
    if (want) want[strlen(want) - strlen("Assistant:")] = 0;
    CHECK(want && strcmp(got, want) == 0, "fed text differs from the one-shot rendering:\n got: %s\nwant: %s",
          got, want ? want : "(null)");
    CHECK(n_feeds == 7, "%d feeds: system, then per turn: prompt, sampled, separator", n_feeds);
    free(want);
    free(got);
    free(a1);
    free(a2);
    run_free(&r);
}

static void test_think_modes(void) {
    static const struct { const char *flag, *input, *prompt, *shown; } c[] = {
        {"off", "hi\n", "\"User: hi\\n\\nAssistant:\"", ""},
        {"on", "hi\n", "\"User: hi\\n\\nAssistant: <think\"", "<think"},
        {"fake", "hi\n", "\"User: hi\\n\\nAssistant: <think>\\n</think\"", "<think>\n</think"},
        {"bit", "hi\n", "\"User: hi think a bit\\n\\nAssistant: <think\"", "<think"},
        {"lot", "hi\n", "\"User: hi think a lot\\n\\nAssistant: <think\"", "<think"},
        {"off", "/think lot\nhi\n", "\"User: hi think a lot\\n\\nAssistant: <think\"", "<think"},
        {"lot", "/think fake\n  hi  \n", "\"User: hi\\n\\nAssistant: <think>\\n</think\"", "<think>\n</think"},
        /* "\n\n" inside user text (a continued line) folds to "\n"; "//" sends a literal '/'. */
        {"off", "a\\\n\\\nb\n", "\"User: a\\nb\\n\\nAssistant:\"", ""},
        {"off", "//x\n", "\"User: /x\\n\\nAssistant:\"", ""},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char args[200];
        snprintf(args, sizeof args, "--think %s --temp 0 -n 4 --verbose-prompt", c[i].flag);
        struct run_out r = chat(c[i].input, args);
        char want[200];
        snprintf(want, sizeof want, "rwkv7 chat: feed %s", c[i].prompt);
        CHECK(r.rc == 0 && strstr(r.err, want), "case %zu (%s): no '%s' in:\n%s", i, c[i].flag, want, r.err);
        CHECK(strncmp(r.out, c[i].shown, strlen(c[i].shown)) == 0, "case %zu: reply '%s' should open with '%s'",
              i, r.out, c[i].shown);
        run_free(&r);
    }
    struct run_out r = chat("/think maybe\n", "");
    CHECK(r.rc == 2 && strstr(r.err, "think mode 'maybe'"), "bad /think: exit %d, %s", r.rc, r.err);
    run_free(&r);
    r = chat("", "--think maybe");
    CHECK(r.rc == 2, "bad --think accepted");
    run_free(&r);
}

/* Sampled replies of the tiny model sometimes end a turn; find one and check the stop rule. */
static void test_end_of_turn(void) {
    int stopped = 0;
    for (int seed = 1; seed <= 24 && stopped < 2; seed++) {
        char args[200];
        snprintf(args, sizeof args, "--temp 1 -s %d -n 300 --verbose-prompt", seed);
        struct run_out r = chat("Tell me a story.\n", args);
        CHECK(r.rc == 0, "seed %d: exit %d", seed, r.rc);
        int n_feeds = 0;
        char *fed = fed_text(r.err, &n_feeds);
        const char *start = strstr(fed, "Assistant:");
        const char *sep = start ? strstr(start, "\n\n") : NULL;
        CHECK(n_feeds == 3 && sep && sep[2] == 0, "seed %d: the turn must end fed with exactly one \"\\n\\n\"", seed);
        /* Stopped early (not by -n): the reply shown is the fed text up to the separator. */
        size_t reply_n = sep && start ? (size_t)(sep - start) - strlen("Assistant:") : 0;
        if (sep && reply_n < 250 && !strstr(r.err, "(299 tokens, sampled)")) {
            stopped++;
            const char *body = start + strlen("Assistant:");
            while (*body == ' ') body++, reply_n--;
            CHECK(strlen(r.out) == reply_n + 1 && strncmp(r.out, body, reply_n) == 0,
                  "seed %d: shown reply '%s' is not the fed text before the separator", seed, r.out);
        }
        free(fed);
        run_free(&r);
    }
    CHECK(stopped > 0, "no seed in 1..24 ended a turn by \"\\n\\n\" before 300 tokens");
}

static void test_save_load(void) {
    char st1[400], st2[400], args[1200];
    path_of(st1, sizeof st1, "chat1.state");
    path_of(st2, sizeof st2, "chat2.state");
    const char *common = "--temp 0.8 --top-k 0 --presence-penalty 0.4 -s 5 -n 30";
    struct run_out a = chat("Hello\nWorld\n", common);
    CHECK(a.rc == 0 && count_lines(a.out) >= 2, "plain run: exit %d", a.rc);
    char in[1200];
    snprintf(in, sizeof in, "Hello\n/save %s\n/reset\n/load %s\nWorld\n", st1, st1);
    struct run_out b = chat(in, common);
    CHECK(b.rc == 0 && strcmp(a.out, b.out) == 0, "/save /reset /load changed the chat:\n%s\nvs\n%s", a.out, b.out);
    run_free(&b);

    snprintf(args, sizeof args, "%s --state-out '%s'", common, st2);
    struct run_out d = chat("Hello\n", args);
    snprintf(args, sizeof args, "%s --state-in '%s'", common, st2);
    struct run_out e = chat("World\n", args);
    size_t nd = strlen(d.out);
    CHECK(d.rc == 0 && e.rc == 0 && strncmp(a.out, d.out, nd) == 0 && strcmp(a.out + nd, e.out) == 0,
          "--state-out then --state-in differs:\n%s%s\nvs\n%s", d.out, e.out, a.out);
    run_free(&d);
    run_free(&e);
    run_free(&a);

    /* /reset replays the system prompt from the cache: same seed state, same reply. */
    struct run_out r = chat("Hello\n/reset\nHello\n", "--temp 0.8 -s 3 -n 20 -sys 'Be kind.' --verbose-prompt");
    char *l1 = line_of(r.out, 0), *l2 = line_of(r.out, 1);
    CHECK(r.rc == 0 && strcmp(l1, l2) == 0, "reply after /reset differs: '%s' vs '%s'", l1, l2);
    CHECK(strstr(r.err, "system prompt from the prefix cache (") != NULL, "no prefix cache hit:\n%s", r.err);
    const char *sys_feed = "feed \"System: Be kind.\\n\\n\"";
    const char *first = strstr(r.err, sys_feed);
    CHECK(first && !strstr(first + 1, sys_feed), "system prompt prefilled more than once");
    free(l1);
    free(l2);
    run_free(&r);

    /* A refused /load keeps the chat alive and the state intact; the exit code reports it. */
    char other[600];
    test_fixture(other, sizeof other, "rand-c256-l2/rand-c256-l2-F32.gguf");
    snprintf(in, sizeof in, "Hello\n/load %s\n/load %s/none.state\n/bogus\nWorld\n", other, g_tmp);
    r = chat(in, common);
    struct run_out plain = chat("Hello\nWorld\n", common);
    CHECK(r.rc == 2 && strcmp(r.out, plain.out) == 0, "failed /load: exit %d, out:\n%s", r.rc, r.out);
    CHECK(strstr(r.err, "not a state file") && strstr(r.err, "unknown command '/bogus'"), "messages:\n%s", r.err);
    run_free(&plain);
    run_free(&r);
}

/* Issue 16.5: piped replies were printed as they are, so a reply holding a newline spanned lines
 * and a script reading one line per reply lost the framing. --jsonl writes one object per reply.
 * The fake think mode makes every reply contain a newline ("<think>\n</think"). */
static void test_jsonl_framing(void) {
    struct run_out plain = chat("one\ntwo\nthree\n", "--think fake -n 6 --temp 0");
    CHECK(plain.rc == 0 && count_lines(plain.out) > 3, "plain replies span lines: %d lines", count_lines(plain.out));
    struct run_out r = chat("one\ntwo\nthree\n", "--think fake -n 6 --temp 0 --jsonl");
    CHECK(r.rc == 0 && count_lines(r.out) == 3, "--jsonl: 3 turns, 3 lines, got %d: %s", count_lines(r.out), r.out);
    for (int i = 0; i < 3; i++) {
        char *l = line_of(r.out, i);
        size_t n = strlen(l);
        const char *head = "{\"role\":\"assistant\",\"content\":\"<think>\\n</think";
        CHECK(!strncmp(l, head, strlen(head)) && n > 2 && !strcmp(l + n - 2, "\"}"),
              "reply %d: %s", i, l);
        free(l);
    }
    /* the same replies, unstreamed: the first plain reply is the decoded first content */
    char *first_plain = line_of(plain.out, 0);
    CHECK(!strcmp(first_plain, "<think>"), "plain reply starts '<think>' then a newline: %s", first_plain);
    free(first_plain);
    run_free(&plain);
    run_free(&r);
}

int main(void) {
    test_fixture(g_model, sizeof g_model, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/rwkv7-test-chat-%ld", (long)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_tmp);
    CHECK(system(cmd) == 0, "mkdir %s", g_tmp);
    test_transcript();
    test_think_modes();
    test_end_of_turn();
    test_save_load();
    test_jsonl_framing();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    CHECK(system(cmd) == 0, "rm %s", g_tmp);
    return test_finish("test_chat");
}
