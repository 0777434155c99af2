/* cmd_chat.c: `rwkv7 chat`: a terminal chat in the RWKV format (runtime/chat_format.h) that keeps
 * the recurrent state between turns, so each turn prefills only its new text. A reply ends at
 * token 0 or at the first "\n\n" in its decoded text; the unfed rest of the reply up to that
 * separator is then fed, so at rest the state has consumed exactly "...reply\n\n" and the next
 * turn starts with "User: ". Piped stdin: one turn per line, stdout carries only the replies.
 * Token equality with a one-shot rendering and where it can differ: docs/state-format.md. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_format.h"
#include "commands.h"
#include "json.h"
#include "prefix_cache.h"
#include "sampler.h"
#include "state_file.h"
#include "tokenizer.h"

struct chat {
    struct rwkv7_model *m;
    struct rwkv7_ctx *ctx;
    const struct rwkv7_tokenizer *tok;
    struct rwkv7_sampler *smp;
    struct rwkv7_stop *stop;            /* "\n\n", for display only */
    struct rwkv7_prefix_cache *cache;   /* state after the system prompt, for /reset */
    float *logits, *base;               /* base: the state before the system prompt */
    int32_t *sys_ids;
    size_t n_sys;
    enum rwkv7_think think;
    int n_predict;
    bool verbose, tty;
    uint64_t n_tokens;                  /* tokens the state has consumed */
    uint64_t base_tokens;               /* of which in the base state (--state-in) */
    char *rb;                           /* the current reply's decoded bytes */
    size_t rb_len, rb_cap;
    bool jsonl;                         /* --jsonl: one JSON object per reply, not streamed */
    struct json_buf shown;              /* --jsonl: the reply as it would have been shown */
};

static const char *const k_think_names[] = {"off", "on", "fake", "bit", "lot"};

static void print_escaped(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\\' || c == '"') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int fail(enum rwkv7_status st) {
    fprintf(stderr, "rwkv7 chat: %s\n", rwkv7_last_error());
    return host_status_exit(st);
}

static int oom(void) {
    fprintf(stderr, "rwkv7 chat: out of memory\n");
    return 1;
}

static int eval(struct chat *c, const int32_t *ids, size_t n, bool logits) {
    int slot = 0;
    enum rwkv7_status st = rwkv7_ctx_eval(c->ctx, 1, &slot, (int)n, ids,
                                          logits ? RWKV7_LOGITS_LAST : RWKV7_LOGITS_NONE,
                                          logits ? c->logits : NULL);
    if (st != RWKV7_OK) return fail(st);
    c->n_tokens += n;
    return logits ? host_check_logits("chat", c->logits, (size_t)rwkv7_model_hparams(c->m)->n_vocab, c->n_tokens) : 0;
}

/* Tokenizes and feeds text; with --verbose-prompt, shows it on stderr. */
static int feed_text(struct chat *c, const char *text, size_t n, bool logits) {
    size_t n_ids = 0;
    int32_t *ids = host_tokenize("chat", c->tok, text, n, &n_ids);
    if (!ids) return 2;
    if (c->verbose) {
        fputs("rwkv7 chat: feed ", stderr);
        print_escaped(stderr, text, n);
        fprintf(stderr, " (%zu tokens)\n", n_ids);
    }
    int rc = n_ids ? eval(c, ids, n_ids, logits) : 0;
    free(ids);
    return rc;
}

static bool rb_append(struct chat *c, const char *s, size_t n) {
    if (c->rb_len + n + 1 > c->rb_cap) {
        size_t cap = 2 * (c->rb_len + n + 64);
        char *nb = realloc(c->rb, cap);
        if (!nb) return false;
        c->rb = nb;
        c->rb_cap = cap;
    }
    memcpy(c->rb + c->rb_len, s, n);
    c->rb_len += n;
    return true;
}

/* Prints text, dropping the spaces that open a reply (the model writes "Assistant: Hi"); with
 * --jsonl, collects it for the reply's JSON line instead. */
static void show(struct chat *c, const char *s, size_t n, bool *at_start) {
    while (*at_start && n > 0 && *s == ' ') { s++; n--; }
    if (!n) return; /* s may be NULL then */
    *at_start = false;
    if (c->jsonl) json_buf_raw(&c->shown, s, n);
    else fwrite(s, 1, n, stdout);
}

/* Streams one reply from the logits of the turn prompt, then feeds the rest of it up to and
 * including the "\n\n" separator. */
static int reply(struct chat *c) {
    const char *suffix[] = {"", " <think", " <think>\n</think", " <think", " <think"};
    bool at_start = true;
    c->shown.n = 0;
    json_buf_raw(&c->shown, "", 0);
    if (c->think != RWKV7_THINK_OFF) show(c, suffix[c->think] + 1, strlen(suffix[c->think]) - 1, &at_start);
    struct rwkv7_utf8_stream u8;
    rwkv7_utf8_stream_init(&u8);
    rwkv7_stop_reset(c->stop);
    c->rb_len = 0;
    size_t fed_len = 0, n_fed = 0, sep = (size_t)-1;
    char out[64 + RWKV7_UTF8_STREAM_EXTRA];
    const char *emit;
    size_t n_emit;
    int matched = -1;
    for (int n_gen = 0; c->n_predict < 0 || n_gen < c->n_predict;) {
        int32_t t = rwkv7_sampler_sample(c->smp, c->logits);
        rwkv7_sampler_accept(c->smp, t);
        n_gen++;
        if (t == 0) break; /* end of text ends the turn too */
        size_t plen, old = c->rb_len;
        const char *piece = rwkv7_token_piece(c->tok, t, &plen);
        if (!rb_append(c, piece, plen)) return oom();
        for (size_t i = old ? old - 1 : 0; i + 1 < c->rb_len && sep == (size_t)-1; i++)
            if (c->rb[i] == '\n' && c->rb[i + 1] == '\n') sep = i;
        while (plen > 0 && matched < 0) {
            size_t take = plen > 64 ? 64 : plen;
            size_t n_out = rwkv7_utf8_stream_feed(&u8, piece, take, out);
            piece += take;
            plen -= take;
            enum rwkv7_status st = rwkv7_stop_feed(c->stop, out, n_out, &matched, &emit, &n_emit);
            if (st != RWKV7_OK) return fail(st);
            show(c, emit, n_emit, &at_start);
        }
        fflush(stdout);
        if (sep != (size_t)-1) break;
        if (c->n_predict >= 0 && n_gen >= c->n_predict) break;
        int rc = eval(c, &t, 1, true);
        if (rc) return rc;
        fed_len = c->rb_len;
        n_fed++;
    }
    if (matched < 0) {
        size_t n_out = rwkv7_utf8_stream_flush(&u8, out);
        enum rwkv7_status st = rwkv7_stop_feed(c->stop, out, n_out, &matched, &emit, &n_emit);
        if (st != RWKV7_OK) return fail(st);
        show(c, emit, n_emit, &at_start);
        if (matched < 0) {
            rwkv7_stop_flush(c->stop, &emit, &n_emit);
            show(c, emit, n_emit, &at_start);
        }
    }
    if (c->jsonl) {
        /* One line per reply whatever the reply holds (newlines are escaped), so a script reads
         * replies with one read per line. */
        if (c->shown.oom) return oom();
        fputs("{\"role\":\"assistant\",\"content\":", stdout);
        json_write_string(stdout, c->shown.p, c->shown.n);
        fputs("}\n", stdout);
    } else {
        fputc('\n', stdout);
    }
    fflush(stdout);
    if (c->verbose) {
        fputs("rwkv7 chat: feed ", stderr);
        print_escaped(stderr, c->rb, fed_len);
        fprintf(stderr, " (%zu tokens, sampled)\n", n_fed);
    }
    /* The separator that ended the turn (or "\n\n" after token 0 or -n) completes the turn; the
     * unfed bytes go in with it so the state holds the reply exactly as decoded. */
    size_t end = sep != (size_t)-1 ? sep + 2 : c->rb_len;
    if (sep == (size_t)-1) {
        const char *tail = c->rb_len && c->rb[c->rb_len - 1] == '\n' ? "\n" : "\n\n";
        if (!rb_append(c, tail, strlen(tail))) return oom();
        end = c->rb_len;
    }
    return feed_text(c, c->rb + fed_len, end - fed_len, false);
}

static int turn(struct chat *c, const char *text) {
    const struct rwkv7_chat_msg msg = {"user", text};
    char *prompt = NULL;
    enum rwkv7_status st = rwkv7_chat_render(NULL, &msg, 1, c->think, &prompt);
    if (st != RWKV7_OK) return fail(st);
    int rc = feed_text(c, prompt, strlen(prompt), true);
    free(prompt);
    return rc ? rc : reply(c);
}

/* Back to the start: the base state, then the system prompt from the prefix cache. */
static int reset(struct chat *c, bool first) {
    enum rwkv7_status st = rwkv7_state_set(c->ctx, 0, c->base);
    if (st != RWKV7_OK) return fail(st);
    c->n_tokens = c->base_tokens;
    if (!first) rwkv7_sampler_reset(c->smp);
    if (c->n_sys == 0) return 0;
    size_t got = 0;
    if ((st = rwkv7_prefix_cache_lookup(c->cache, c->ctx, 0, c->sys_ids, c->n_sys, &got)) != RWKV7_OK)
        return fail(st);
    if (got == c->n_sys) {
        if (c->verbose) fprintf(stderr, "rwkv7 chat: system prompt from the prefix cache (%zu tokens)\n", got);
        c->n_tokens += got;
        return 0;
    }
    if (c->verbose) {
        fputs("rwkv7 chat: feed ", stderr);
        size_t len = 0;
        char *text = NULL;
        if (rwkv7_detokenize(c->tok, c->sys_ids, c->n_sys, NULL, 0, &len) == RWKV7_OK && (text = malloc(len + 1)) &&
            rwkv7_detokenize(c->tok, c->sys_ids, c->n_sys, text, len, &len) == RWKV7_OK)
            print_escaped(stderr, text, len);
        free(text);
        fprintf(stderr, " (%zu tokens)\n", c->n_sys);
    }
    int rc = eval(c, c->sys_ids, c->n_sys, false);
    if (rc) return rc;
    if ((st = rwkv7_prefix_cache_store(c->cache, c->ctx, 0, c->sys_ids, c->n_sys)) != RWKV7_OK) return fail(st);
    return 0;
}

static int save(struct chat *c, const char *path) {
    size_t n = rwkv7_sampler_state_size(c->smp);
    void *blob = malloc(n);
    if (!blob) return oom();
    rwkv7_sampler_state_get(c->smp, blob);
    struct rwkv7_state_extra x = {c->n_tokens, -1, NULL, blob, n, "rwkv7 chat", false, 0};
    enum rwkv7_status st = rwkv7_state_save_file(c->m, c->ctx, 0, &x, path);
    free(blob);
    if (st != RWKV7_OK) return fail(st);
    host_errorf("rwkv7 chat: saved the state (%llu tokens) to '%s'\n", (unsigned long long)c->n_tokens, path);
    return 0;
}

/* Loads a state file into the slot. A pending token (from `generate --state-out`) is fed at
 * once so the chat state is complete; a sampler part is taken when these options fit it. */
static int load(struct chat *c, const char *path) {
    struct rwkv7_state_extra x;
    enum rwkv7_status st = rwkv7_state_load_file(c->m, c->ctx, 0, path, &x);
    if (st != RWKV7_OK) return fail(st);
    if (!x.has_hash)
        host_errorf("rwkv7 chat: note: '%s' names no model (an initial state?); its shapes match, using it\n", path);
    if (x.sampler && rwkv7_sampler_state_set(c->smp, x.sampler, x.sampler_size) != RWKV7_OK)
        host_errorf("rwkv7 chat: note: the sampler state in '%s' does not fit these options; keeping the current one\n", path);
    c->n_tokens = x.n_tokens;
    int rc = x.pending_token >= 0 ? eval(c, &x.pending_token, 1, false) : 0;
    rwkv7_state_extra_free(&x);
    return rc;
}

static void help(void) {
    fprintf(stderr,
            "commands:\n"
            "  /save FILE    save the conversation state (and sampler state) to FILE\n"
            "  /load FILE    continue from a state file saved by /save, --state-out or a converter\n"
            "  /reset        start over from the system prompt (cached, not prefilled again)\n"
            "  /think MODE   reasoning mode for the next turns: off, on, fake, bit, lot\n"
            "  /help         this list\n"
            "  /quit         end the chat (so does end of input)\n"
            "  //text        send \"/text\" as a message\n"
            "  a line ending in '\\' continues on the next line\n");
}

/* Runs one /command; *quit set by /quit. Returns 0, or an exit code for a failed command. */
static int command(struct chat *c, char *line, bool *quit) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = 0;
    arg += strspn(arg, " \t");
    for (size_t n = strlen(arg); n > 0 && (arg[n - 1] == ' ' || arg[n - 1] == '\t'); n--) arg[n - 1] = 0;
    bool has_arg = *arg != 0;
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) {
        *quit = true;
        return 0;
    }
    if (!strcmp(line, "/help")) {
        help();
        return 0;
    }
    if (!strcmp(line, "/reset")) return reset(c, false);
    if ((!strcmp(line, "/save") || !strcmp(line, "/load") || !strcmp(line, "/think")) && !has_arg) {
        fprintf(stderr, "rwkv7 chat: %s needs an argument (see /help)\n", line);
        return 2;
    }
    if (!strcmp(line, "/save")) return save(c, arg);
    if (!strcmp(line, "/load")) return load(c, arg);
    if (!strcmp(line, "/think")) {
        enum rwkv7_status st = rwkv7_think_parse(arg, &c->think);
        if (st != RWKV7_OK) return fail(st);
        if (c->tty) fprintf(stderr, "rwkv7 chat: think mode %s\n", k_think_names[c->think]);
        return 0;
    }
    host_errorf("rwkv7 chat: unknown command '%s' (see /help)\n", line);
    return 2;
}

/* Reads one logical line (joining lines that end in '\'); NULL at end of input. */
static char *read_turn(bool tty, bool *eof) {
    char *all = NULL, *line = NULL;
    size_t all_n = 0, cap = 0;
    for (;;) {
        if (tty) {
            fputs(all ? ". " : "> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &cap, stdin);
        if (got < 0) {
            *eof = true;
            break;
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        bool more = got > 0 && line[got - 1] == '\\';
        if (more) line[--got] = 0;
        char *na = realloc(all, all_n + (size_t)got + 2);
        if (!na) break;
        all = na;
        if (all_n) all[all_n++] = '\n';
        memcpy(all + all_n, line, (size_t)got + 1);
        all_n += (size_t)got;
        if (!more) break;
    }
    free(line);
    return all;
}

int cmd_chat(int argc, char **argv) {
    struct model_opts mo = {0};
    struct rwkv7_sampler_params sp;
    rwkv7_sampler_params_default(&sp);
    uint64_t seed = RWKV7_SEED_RANDOM;
    const char *system = NULL, *think_name = "off", *state_in = NULL, *state_out = NULL;
    int n_predict = -1;
    bool verbose = false, no_escape = false, jsonl = false;
    const struct opt opts[] = {
        MODEL_OPTS(mo),
        {"-sys,--system-prompt", OPT_STR, &system, "TEXT", "system prompt, sent as the \"System:\" turn (\\n escapes decoded; default: none)"},
        {"--think", OPT_STR, &think_name, "MODE", "G1 reasoning: off | on | fake | bit | lot (default off; /think changes it)"},
        {"-n,--predict,--n-predict", OPT_INT, &n_predict, "N", "most tokens per reply; -1 = until the end of the turn (default -1)"},
        SAMPLING_OPTS(sp, seed),
        {"--state-in", OPT_STR, &state_in, "FILE", "start from a state file (saved chat, generate --state-out, or a converted initial state)"},
        {"--state-out", OPT_STR, &state_out, "FILE", "save the conversation state when the chat ends"},
        {"--verbose-prompt", OPT_FLAG, &verbose, NULL, "show every text fed to the model on stderr"},
        {"--jsonl", OPT_FLAG, &jsonl, NULL, "for scripts: each reply as one line {\"role\":\"assistant\",\"content\":...}, not streamed"},
        {"--no-escape", OPT_FLAG, &no_escape, NULL, "take -sys literally"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("chat", "-m FILE [-sys TEXT] [--think MODE] [sampling options] [--state-in F] [--state-out F]",
                        opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    sp.seed = seed;
    struct chat c = {0};
    c.n_predict = n_predict;
    c.verbose = verbose;
    c.jsonl = jsonl;
    c.tty = isatty(fileno(stdin));
    char *sys_text = NULL, *line = NULL;
    enum rwkv7_status st;
    if ((st = rwkv7_think_parse(think_name, &c.think)) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 chat: %s\n", rwkv7_last_error());
        return 2;
    }
    if (n_predict < -1) {
        fprintf(stderr, "rwkv7 chat: -n must be -1 (no limit) or >= 0, got %d\n", n_predict);
        return 2;
    }
    if ((rc = host_check_sampling("chat", &sp)) || (state_out && (rc = host_check_writable("chat", state_out)))) return rc;
    if ((rc = host_load_model("chat", &mo, c.tty, &c.m))) return rc;
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(c.m);
    c.tok = rwkv7_model_tokenizer(c.m);
    size_t state_bytes = rwkv7_state_n_floats(hp) * sizeof(float);
    const char *nn = "\n\n";
    if ((st = rwkv7_sampler_init(&sp, hp->n_vocab, &c.smp)) != RWKV7_OK) { rc = fail(st); goto done; }
    if ((st = rwkv7_ctx_init(c.m, 1, &c.ctx)) != RWKV7_OK ||
        (st = rwkv7_stop_init(&nn, 1, &c.stop)) != RWKV7_OK ||
        (st = rwkv7_prefix_cache_init(c.m, 2 * state_bytes + (1u << 20), &c.cache)) != RWKV7_OK) {
        rc = fail(st);
        goto done;
    }
    c.logits = malloc((size_t)hp->n_vocab * sizeof(float));
    c.base = malloc(state_bytes);
    if (!c.logits || !c.base) { rc = oom(); goto done; }
    if (state_in && (rc = load(&c, state_in))) goto done;
    if ((st = rwkv7_state_get(c.ctx, 0, c.base)) != RWKV7_OK) { rc = fail(st); goto done; }
    c.base_tokens = c.n_tokens;
    if (system) {
        /* The system turn is rendered by chat_format with no messages, minus the generation
         * turn "Assistant:" it always appends, so the format has one source. */
        char *copy = strdup(system);
        if (!copy) { rc = oom(); goto done; }
        size_t n = no_escape ? strlen(copy) : unescape_prompt(copy);
        copy[n] = 0;
        st = rwkv7_chat_render(copy, NULL, 0, RWKV7_THINK_OFF, &sys_text);
        free(copy);
        if (st != RWKV7_OK) { rc = fail(st); goto done; }
        size_t len = strlen(sys_text) - strlen("Assistant:");
        sys_text[len] = 0;
        if (len > strlen("System: \n\n") &&
            !(c.sys_ids = host_tokenize("chat", c.tok, sys_text, len, &c.n_sys))) { rc = 2; goto done; }
    }
    if ((rc = reset(&c, true))) goto done;
    if (c.tty)
        fprintf(stderr, "rwkv7 chat: %s; think %s; seed %llu. /help for commands, /quit or Ctrl-D to end.\n",
                rwkv7_model_device_desc(c.m), k_think_names[c.think],
                (unsigned long long)rwkv7_sampler_seed(c.smp));
    int failed = 0;
    for (bool quit = false, eof = false; !quit && !eof;) {
        free(line);
        if (!(line = read_turn(c.tty, &eof))) break;
        const char *text = line + strspn(line, " \t");
        if (!*text) continue;
        int r;
        if (text[0] == '/' && text[1] != '/') r = command(&c, (char *)text, &quit);
        else r = turn(&c, text[0] == '/' ? text + 1 : text);
        /* A runtime failure ends the chat; a bad command or file only fails the exit code. */
        if (r == 1) { rc = 1; goto done; }
        if (r) failed = r;
    }
    if (c.tty) fputc('\n', stdout);
    if (state_out && (rc = save(&c, state_out))) goto done;
    rc = failed;
done:
    free(line);
    free(sys_text);
    free(c.sys_ids);
    free(c.logits);
    free(c.base);
    free(c.rb);
    json_buf_free(&c.shown);
    rwkv7_prefix_cache_free(c.cache);
    rwkv7_stop_free(c.stop);
    rwkv7_sampler_free(c.smp);
    rwkv7_ctx_free(c.ctx);
    rwkv7_model_free(c.m);
    return rc;
}
