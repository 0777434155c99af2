/* cmd_batch.c: `rwkv7 batch`: headless generation over an OpenAI/vLLM batch JSONL file
 * (ecosystem.md section 2.5) with continuous batching (batch_sched.c). Every input line in this
 * shard yields exactly one output line, written and flushed as soon as its request completes (so
 * output is in completion order, not input order; docs/batch.md shows how to sort it). OUT is
 * locked (flock) for the whole run, so one run writes it at a time. --resume skips the lines whose
 * record is final (2xx, 4xx), reruns those with a 5xx record and compacts OUT to one record per
 * request; SIGINT/SIGTERM (and --max-runtime) stop admitting, finish the step and save the
 * requests in flight to OUT.inflight (batch_ckpt.c), which --resume continues exactly. Input
 * lines are read with a length bound (--max-line). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "commands.h"
#include "status.h"

static volatile sig_atomic_t g_stop_signal = 0;

static void on_signal(int sig) { g_stop_signal = sig; }

struct batch_run {
    FILE *out;
    const char *out_path;
    const char *model_name;
    long long created;
    long written, errors, server_errors, max_requests;
    double last_sync_ms;
    bool write_failed;
};

/* Checkpoints of requests in flight (batch_ckpt.c): the sidecar OUT.inflight. */
struct ckpt_run {
    char *path;                  /* NULL: OUT is not a regular file, no checkpoints */
    struct rwkv7_model *m;
    struct batch_ckpt_id id;     /* model_hash filled on first use (it reads the whole model) */
    bool have_hash;
    struct batch_ckpt_file old;  /* the sidecar --resume found (entries not continued yet) */
    struct batch_ckpt_writer *w; /* the one being written */
    double deadline_ms;          /* stop putting sequences after this (--checkpoint-grace); 0: none */
    long saved, dropped, continued;
    long long saved_tokens, continued_tokens;
};

static const struct batch_ckpt_id *ckpt_id(struct ckpt_run *c) {
    if (!c->have_hash) {
        c->id.model_hash = rwkv7_model_hash(c->m);
        c->have_hash = true;
    }
    return &c->id;
}

static enum rwkv7_status ckpt_put(void *user, const struct batch_req *r, const struct batch_ckpt_seq *seq) {
    struct ckpt_run *c = user;
    (void)r;
    if (c->deadline_ms > 0 && now_ms() > c->deadline_ms) {
        c->dropped++;
        return RWKV7_OK;
    }
    RWKV7_TRY(batch_ckpt_put(c->w, seq));
    c->saved++;
    c->saved_tokens += seq->n_gen + (long long)seq->pos;
    return RWKV7_OK;
}

/* Writes OUT.inflight: every sequence running in sched and the entries of the old sidecar that
 * were not continued yet. deadline_ms: 0 or when to give up on the remaining sequences. */
static enum rwkv7_status ckpt_write(struct ckpt_run *c, struct batch_sched *sched, double deadline_ms) {
    c->saved = c->dropped = 0;
    c->saved_tokens = 0;
    c->deadline_ms = deadline_ms;
    RWKV7_TRY(batch_ckpt_begin(c->path, ckpt_id(c), &c->w));
    long copied = 0, n = 0;
    enum rwkv7_status st = batch_sched_checkpoint(sched, ckpt_put, c);
    if (st == RWKV7_OK) st = batch_ckpt_copy_unused(&c->old, c->w, &copied);
    if (st == RWKV7_OK) st = batch_ckpt_commit(c->w, &n);
    else batch_ckpt_abort(c->w);
    c->w = NULL;
    c->saved += copied;
    return st;
}

static enum rwkv7_status write_record(struct batch_run *run, const struct json_buf *b) {
    if (b->oom) return RWKV7_ERR_OOM;
    if (fwrite(b->p, 1, b->n, run->out) != b->n || fflush(run->out) != 0) {
        host_errorf("rwkv7 batch: cannot write '%s': %s\n", run->out_path, strerror(errno));
        run->write_failed = true;
        return RWKV7_ERR_IO;
    }
    /* fflush hands the line to the kernel, which survives a killed process; fsync about once a
     * second also covers a crashed machine without paying a disk flush per request. */
    double t = now_ms();
    if (t - run->last_sync_ms > 1000) {
        fsync(fileno(run->out));
        run->last_sync_ms = t;
    }
    run->written++;
    return RWKV7_OK;
}

static enum rwkv7_status write_error(struct batch_run *run, const struct batch_req *r) {
    struct json_buf b = {0};
    batch_format_error(&b, r);
    enum rwkv7_status st = write_record(run, &b);
    json_buf_free(&b);
    run->errors++;
    run->server_errors += r->status >= 500;
    return st;
}

/* A finished request; the scheduler sets a status when the sequence failed (non-finite logits). */
static enum rwkv7_status on_done(void *user, const struct batch_req *r, const char *text, size_t n_text,
                                 const char *finish, int n_gen) {
    struct batch_run *run = user;
    if (r->status) return write_error(run, r);
    struct json_buf b = {0};
    batch_format_result(&b, r, run->model_name, run->created, text, n_text, finish, n_gen);
    enum rwkv7_status st = write_record(run, &b);
    json_buf_free(&b);
    return st;
}

/* Continues r from entry i of the old sidecar. *taken is false (after one warning line) when the
 * entry cannot be used; r is then untouched and the caller starts it fresh. */
static enum rwkv7_status ckpt_continue(struct ckpt_run *c, struct batch_sched *sched, struct batch_req *r, long i,
                                       bool *taken) {
    *taken = false;
    struct batch_ckpt_seq seq;
    void *buf = NULL;
    enum rwkv7_status st = batch_ckpt_read(&c->old, i, &seq, &buf);
    if (st == RWKV7_OK) st = batch_sched_add_restored(sched, r, &seq);
    if (st == RWKV7_OK) {
        *taken = true;
        c->continued++;
        c->continued_tokens += seq.n_gen + (long long)seq.pos;
    }
    free(buf);
    if (st == RWKV7_ERR_FORMAT) {
        host_errorf("rwkv7 batch: warning: %s; line %ld starts fresh\n", rwkv7_last_error(), r->line);
        return RWKV7_OK;
    }
    return st;
}

/* Reads one line (with its '\n') into *buf, keeping at most max bytes of it; *len is the whole
 * line's length, so a longer line is seen (and skipped) without holding it in memory. Returns
 * false at the end of the input. */
static bool read_line(FILE *f, char **buf, size_t *cap, size_t max, size_t *len, size_t *kept) {
    size_t n = 0, total = 0;
    int c;
    while ((c = getc_unlocked(f)) != EOF) {
        total++;
        if ((total & 0xFFFFF) == 0 && g_stop_signal) break; /* a huge line: SIGTERM still acts */
        if (n < max) {
            if (n + 2 > *cap) {
                size_t nc = *cap ? 2 * *cap : 4096;
                if (nc > max + 2) nc = max + 2;
                char *nb = realloc(*buf, nc);
                if (!nb) return false;
                *buf = nb;
                *cap = nc;
            }
            (*buf)[n++] = (char)c;
        }
        if (c == '\n') break;
    }
    if (*buf) (*buf)[n] = 0;
    *len = total;
    *kept = n;
    return total > 0;
}

/* Non-blank lines of the input in this shard, for the progress line: a byte scan that holds no
 * line in memory, however long. */
static long count_requests(FILE *f, long shard_i, long shard_n, uint64_t *hash) {
    char buf[1 << 16];
    *hash = BATCH_FNV_INIT;
    long total = 0, index = 0;
    bool any = false;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        *hash = batch_fnv1a(*hash, buf, got); /* ties checkpoints to this input (batch_ckpt.c) */
        for (size_t i = 0; i < got; i++) {
            char c = buf[i];
            if (c == '\n') {
                total += any && index % shard_n == shard_i;
                index++;
                any = false;
            } else if (c != ' ' && c != '\t' && c != '\r') {
                any = true;
            }
        }
    }
    return total + (any && index % shard_n == shard_i);
}

/* RWKV7_BATCH_FAIL_LINES=3,17: test hook (read once) that makes the setup of these input lines
 * fail as if memory ran out, to check that 5xx records are retried by --resume. */
static bool fail_hook(long index) {
    const char *e = getenv("RWKV7_BATCH_FAIL_LINES");
    while (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (end == e) break;
        if (v == index) return true;
        e = *end == ',' ? end + 1 : end;
    }
    return false;
}

/* RWKV7_BATCH_STEP_DELAY_MS=N: test hook that sleeps N ms after every scheduler step, so the tests
 * that stop a run at a moment (SIGTERM, --max-runtime, SIGKILL after --checkpoint-every) find
 * requests in flight however fast the machine is. */
static void step_delay_hook(void) {
    static long ms = -1;
    if (ms < 0) {
        const char *e = getenv("RWKV7_BATCH_STEP_DELAY_MS");
        ms = e ? strtol(e, NULL, 10) : 0;
        if (ms < 0 || ms > 1000) ms = 0;
    }
    if (ms > 0) {
        struct timespec ts = {0, ms * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

/* The custom_id of a line outside this shard (for duplicate detection), or NULL. */
static char *peek_custom_id(const char *line, size_t n) {
    struct json_value v;
    if (json_parse(line, n, NULL, &v) != RWKV7_OK) return NULL;
    const struct json_value *c = json_get(&v, "custom_id");
    char *id = c && c->type == JSON_STRING && c->len == strlen(c->str) && c->len > 0 && c->len <= 4000 ? strdup(c->str) : NULL;
    json_free(&v);
    return id;
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%02ld:%02ld", t / 60, t % 60);
}

static void progress(long done, long total, long errors, long long gen, double elapsed_s, double rate_base_done,
                     long continued, bool tty, bool final) {
    char el[32], eta[32];
    double per_s = elapsed_s > 0 ? (double)gen / elapsed_s : 0;
    double req_rate = elapsed_s > 0 ? (done - rate_base_done) / elapsed_s : 0;
    fmt_duration(el, sizeof el, elapsed_s);
    fmt_duration(eta, sizeof eta, req_rate > 0 ? (double)(total - done) / req_rate : -1);
    char cont[48] = "";
    if (continued > 0) snprintf(cont, sizeof cont, ", %ld continued", continued);
    fprintf(stderr, "%srwkv7 batch: %3.0f%% | %ld/%ld done, %ld errors%s | %.1f tok/s | %s elapsed, ETA %s%s",
            tty ? "\r\033[K" : "", total ? 100.0 * (double)done / (double)total : 100.0, done, total, errors, cont, per_s,
            el, eta, tty && !final ? "" : "\n");
}

static bool parse_shard(const char *s, long *i, long *n) {
    char *end;
    errno = 0;
    *i = strtol(s, &end, 10);
    if (end == s || *end != '/' || errno) return false;
    const char *b = end + 1;
    *n = strtol(b, &end, 10);
    return end != b && !*end && !errno && *n >= 1 && *i >= 0 && *i < *n;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool over_time(float max_runtime, double t_start) {
    return max_runtime > 0 && now_ms() - t_start >= (double)max_runtime * 1e3;
}

int cmd_batch(int argc, char **argv) {
    double t_start = now_ms();
    struct model_opts mo = {0};
    struct batch_defaults d = {0};
    rwkv7_sampler_params_default(&d.sp);
    uint64_t seed = RWKV7_SEED_RANDOM;
    const char *in_path = NULL, *out_path = NULL, *shard = NULL, *think = NULL;
    bool resume = false, overwrite = false, no_progress = false;
    int parallel = 0, chunk = 128, max_requests = 0, cache_mib = 256;
    int max_line = 8 << 20;
    bool no_invariance = false;
    float ckpt_grace = 20, ckpt_every = 0, max_runtime = 0;
    d.max_tokens = 256;
    d.max_prompt_tokens = 32768;
    const struct opt opts[] = {
        MODEL_OPTS(mo),
        {"-i,--input-file", OPT_STR, &in_path, "IN.jsonl", "requests, one OpenAI batch JSON object per line (required)"},
        {"-o,--output-file", OPT_STR, &out_path, "OUT.jsonl", "results, one line per request, appended as each completes (required)"},
        {"--resume", OPT_FLAG, &resume, NULL, "keep OUT, skip the requests with a final (2xx/4xx) record, rerun those with a 5xx record, continue those in OUT.inflight"},
        {"--overwrite", OPT_FLAG, &overwrite, NULL, "replace a non-empty OUT (default: refuse, exit 2)"},
        {"-np,--parallel", OPT_INT, &parallel, "N", "sequences in flight (default: what half the free device memory holds, at most 256 on a GPU, 64 on the CPU)"},
        {"--shard", OPT_STR, &shard, "I/N", "process only the lines whose 0-based index mod N is I (default 0/1)"},
        {"-n,--max-tokens", OPT_INT, &d.max_tokens, "N", "max_tokens of requests that give none (default 256)"},
        {"--max-prompt-tokens", OPT_INT, &d.max_prompt_tokens, "N", "longer prompts become error records (default 32768)"},
        {"--max-line", OPT_INT, &max_line, "BYTES", "longer input lines become error records (default 8388608 = 8 MiB)"},
        {"--chunk", OPT_INT, &chunk, "N", "prefill tokens per sequence per step (default 128)"},
        {"--prefix-cache", OPT_INT, &cache_mib, "MiB", "states of shared prompt prefixes kept at chunk boundaries; 0 = off (default 256)"},
        SAMPLING_OPTS(d.sp, seed),
        {"--think", OPT_STR, &think, "MODE", "chat think mode of requests that give none: off|on|bit|lot|fake (default off)"},
        {"--ignore-eos", OPT_FLAG, &d.ignore_eos, NULL, "do not stop at token 0 unless a request says so"},
        {"--no-progress", OPT_FLAG, &no_progress, NULL, "no progress line on stderr (the summary stays)"},
        {"--no-batch-invariance", OPT_FLAG, &no_invariance, NULL,
         "let GPU backends use their faster batched kernels; a request's tokens may then depend on its neighbours"},
        {"--max-requests", OPT_INT, &max_requests, "K", "stop like Ctrl-C after K records are written (for testing --resume)"},
        {"--max-runtime", OPT_FLOAT, &max_runtime, "S", "stop like SIGTERM after S seconds (checkpointing what runs); 0 = no limit (default)"},
        {"--checkpoint-grace", OPT_FLOAT, &ckpt_grace, "S", "on a stop, save requests in flight to OUT.inflight for at most S seconds (default 20; 0 = drop them)"},
        {"--checkpoint-every", OPT_FLOAT, &ckpt_every, "S", "also write OUT.inflight every S seconds, against SIGKILL and node loss (default 0 = off)"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("batch", "-m FILE -i IN.jsonl -o OUT.jsonl [--resume] [--parallel N] [--shard I/N] [sampling options]",
                        opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    long shard_i = 0, shard_n = 1;
    if (!in_path || !out_path) {
        fprintf(stderr, "rwkv7 batch: need -i IN.jsonl and -o OUT.jsonl (see rwkv7 batch --help)\n");
        return 2;
    }
    if (shard && !parse_shard(shard, &shard_i, &shard_n)) {
        host_errorf("rwkv7 batch: --shard needs I/N with 0 <= I < N, got '%s'\n", shard);
        return 2;
    }
    if (think && rwkv7_think_parse(think, &d.think) != RWKV7_OK) {
        host_errorf("rwkv7 batch: --think must be off, on, bit, lot or fake, got '%s'\n", think);
        return 2;
    }
    if (parallel < 0 || parallel > 4096 || chunk < 1 || chunk > 4096 || d.max_tokens < 0 || d.max_prompt_tokens < 1 ||
        max_requests < 0 || cache_mib < 0 || max_line < 64 || max_line > (1 << 30) || mo.threads < 0 || mo.threads > 1024) {
        fprintf(stderr, "rwkv7 batch: --parallel must be in [1, 4096], --chunk in [1, 4096], -n and --max-requests >= 0, "
                        "--max-prompt-tokens >= 1, --prefix-cache >= 0, --max-line in [64, 1073741824], -t in [0, 1024]\n");
        return 2;
    }
    if (!(ckpt_grace >= 0 && ckpt_grace <= 1e6) || !(ckpt_every >= 0 && ckpt_every <= 1e7) ||
        !(max_runtime >= 0 && max_runtime <= 1e9)) {
        fprintf(stderr, "rwkv7 batch: --checkpoint-grace, --checkpoint-every and --max-runtime take seconds >= 0\n");
        return 2;
    }
    d.json_limits.max_bytes = (size_t)max_line;
    d.json_limits.stop = &g_stop_signal;
    if (resume && overwrite) {
        fprintf(stderr, "rwkv7 batch: give only one of --resume and --overwrite\n");
        return 2;
    }
    if ((rc = host_check_sampling("batch", &d.sp))) return rc;
    if (seed == RWKV7_SEED_RANDOM) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        seed &= 0x7fffffffffffffffull;
    }
    d.batch_seed = seed;

    struct stat st_in, st_out;
    if (stat(in_path, &st_in) != 0) {
        host_errorf("rwkv7 batch: cannot open '%s': %s\n", in_path, strerror(errno));
        return 2;
    }
    bool out_exists = stat(out_path, &st_out) == 0;
    if (out_exists && st_out.st_dev == st_in.st_dev && st_out.st_ino == st_in.st_ino) {
        fprintf(stderr, "rwkv7 batch: the output file is the input file\n");
        return 2;
    }

    FILE *in = NULL;
    struct batch_run run = {0};
    struct batch_set done_keys = {0}, retry_keys = {0}, seen_ids = {0};
    struct rwkv7_model *m = NULL;
    struct batch_sched *sched = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    enum rwkv7_status st = RWKV7_OK;
    long already = 0;
    struct ckpt_run ck = {0};
    ck.old.fd = -1;
    rc = 0;

    /* One writer per output: the lock is taken before OUT is read for --resume or changed in any
     * way, and held until the last record (and the compaction) is written. A second run on the
     * same OUT fails at once and touches nothing. Outputs that are not regular files (a pipe,
     * /dev/stdout) are neither locked nor read back. */
    int out_fd = open(out_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0 && errno == EACCES && !resume) out_fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        host_errorf("rwkv7 batch: cannot open '%s' for writing: %s\n", out_path, strerror(errno));
        return 2;
    }
    struct stat st_fd;
    bool regular = fstat(out_fd, &st_fd) == 0 && S_ISREG(st_fd.st_mode);
    if (regular && flock(out_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            host_errorf("rwkv7 batch: '%s' is in use by another rwkv7 batch\n", out_path);
            close(out_fd);
            return 2;
        }
        host_errorf("rwkv7 batch: note: cannot lock '%s' (%s); make sure no other run writes it\n", out_path,
                strerror(errno));
    }
    if (!(run.out = fdopen(out_fd, "ab"))) {
        host_errorf("rwkv7 batch: cannot open '%s' for writing: %s\n", out_path, strerror(errno));
        close(out_fd);
        return 1;
    }
    if (regular && st_fd.st_size > 0 && !resume && !overwrite) {
        host_errorf("rwkv7 batch: '%s' exists and is not empty; use --resume to continue it or --overwrite to replace it\n",
                out_path);
        rc = 2;
        goto done;
    }
    if (regular && overwrite && ftruncate(out_fd, 0) != 0) {
        host_errorf("rwkv7 batch: cannot truncate '%s': %s\n", out_path, strerror(errno));
        rc = 2;
        goto done;
    }
    if (resume && regular && (already = batch_scan_output(out_fd, out_path, &done_keys, &retry_keys)) < 0) { rc = 1; goto done; }
    if (regular) {
        size_t n = strlen(out_path) + sizeof ".inflight";
        if (!(ck.path = malloc(n))) {
            fprintf(stderr, "rwkv7 batch: out of memory\n");
            rc = 1;
            goto done;
        }
        snprintf(ck.path, n, "%s.inflight", out_path);
        /* A fresh OUT makes an old sidecar meaningless: its requests will run from the start. */
        if (!resume) unlink(ck.path);
    }
    if (!(in = fopen(in_path, "rb"))) {
        host_errorf("rwkv7 batch: cannot open '%s': %s\n", in_path, strerror(errno));
        rc = 2;
        goto done;
    }
    /* First pass: count this shard's requests for the progress line (cheap next to inference). */
    long total = count_requests(in, shard_i, shard_n, &ck.id.input_hash), index = 0;
    if (ferror(in)) {
        host_errorf("rwkv7 batch: cannot read '%s'\n", in_path);
        rc = 2;
        goto done;
    }
    rewind(in);

    if ((rc = host_load_model("batch", &mo, true, &m))) goto done;
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    size_t per_seq = rwkv7_state_n_floats(hp) * sizeof(float) + (size_t)hp->n_vocab * sizeof(float);
    if (parallel == 0) {
        /* The state per sequence is constant (no KV cache), so the default follows from the free
         * device memory: half of it (the rest is left for activations and other programs), at
         * most 256 sequences on a GPU and 64 on the CPU, where more no longer raises throughput.
         * A backend that cannot tell its free memory gets a 1 GiB budget. */
        uint64_t free_b = 0, total_b = 0;
        uint64_t budget = rwkv7_model_device_memory(m, &free_b, &total_b) == RWKV7_OK ? free_b / 2 : (uint64_t)1 << 30;
        uint64_t cap = strcmp(rwkv7_model_backend_name(m), "cpu") ? 256 : 64;
        uint64_t fit = budget / per_seq;
        parallel = fit < 1 ? 1 : fit > cap ? (int)cap : (int)fit;
        if (total > 0 && total < parallel) parallel = (int)total;
    }
    /* A cache that cannot hold one state is no cache: turn it off rather than fail. */
    size_t cache_bytes = (size_t)cache_mib << 20;
    if (cache_bytes < 2 * per_seq) cache_bytes = 0;
    /* On by default: the same request gives the same tokens alone or among others. Free on the
     * CPU; on GPUs it keeps every matmul on the matrix-vector kernels (bench/RESULTS.md). */
    rwkv7_model_set_batch_invariant(m, !no_invariance);
    if ((st = batch_sched_init(m, parallel, chunk, cache_bytes, &sched)) != RWKV7_OK) {
        fprintf(stderr, "rwkv7 batch: cannot set up %d sequences: %s\n", parallel, rwkv7_last_error());
        rc = host_status_exit(st);
        goto done;
    }

    /* What a checkpoint must match to be continued: the model (hash, on first use), the input's
     * bytes (hashed by count_requests), and everything else that changes a request's tokens. The
     * CPU gives the same bits on any machine; a GPU backend only on the same device and with batch
     * invariance. The seed is left out: a continued request keeps its own random stream. */
    {
        char cfg[1024];
        bool cpu = !strcmp(rwkv7_model_backend_name(m), "cpu");
        snprintf(cfg, sizeof cfg, "v1 backend=%s dev=%s inv=%d chunk=%d n=%d maxp=%d eos=%d think=%d t=%a k=%d p=%a minp=%a "
                 "rp=%a rn=%d pp=%a fp=%a pd=%a", rwkv7_model_backend_name(m), cpu ? "" : rwkv7_model_device_desc(m),
                 !no_invariance, chunk, d.max_tokens, d.max_prompt_tokens, d.ignore_eos, (int)d.think,
                 (double)d.sp.temperature, d.sp.top_k, (double)d.sp.top_p, (double)d.sp.min_p, (double)d.sp.repeat_penalty,
                 d.sp.repeat_last_n, (double)d.sp.presence_penalty, (double)d.sp.frequency_penalty,
                 (double)d.sp.penalty_decay);
        ck.id.config_hash = batch_fnv1a(BATCH_FNV_INIT, cfg, strlen(cfg));
        ck.id.n_state = rwkv7_state_n_floats(hp);
        ck.m = m;
        struct stat st_ck;
        if (resume && ck.path && stat(ck.path, &st_ck) == 0 && (st = batch_ckpt_open(ck.path, ckpt_id(&ck), &ck.old)) != RWKV7_OK) {
            fprintf(stderr, "rwkv7 batch: %s\n", rwkv7_last_error());
            rc = 1;
            goto done;
        }
    }

    run.out_path = out_path;
    run.model_name = base_name(mo.model);
    run.created = (long long)time(NULL);
    run.max_requests = max_requests;
    run.last_sync_ms = now_ms();
    fprintf(stderr, "rwkv7 batch: %s; %ld requests in shard %ld/%ld%s; %d in flight (%.1f MiB state+logits each); "
                    "prefill chunk %d; batch seed %llu\n",
            rwkv7_model_device_desc(m), total, shard_i, shard_n, resume ? " (resuming)" : "", parallel,
            (double)per_seq / (1 << 20), chunk, (unsigned long long)seed);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    bool tty = isatty(fileno(stderr)) && !no_progress;
    long skipped = 0;
    bool eof = false;
    double t0 = now_ms(), last_progress = 0, last_ckpt = t0;
    char key[4200];
    index = -1;
    for (;;) {
        bool stopping = g_stop_signal || (max_requests > 0 && run.written >= max_requests) || over_time(max_runtime, t_start);
        while (!eof && !stopping && !g_stop_signal && batch_sched_free_slots(sched) > 0) {
            size_t full = 0, n = 0;
            if (!read_line(in, &line, &line_cap, (size_t)max_line, &full, &n)) {
                eof = true;
                break;
            }
            if (g_stop_signal) break; /* the line may be cut short: it runs again on --resume */
            index++;
            char *text = line;
            /* A byte-order mark opens many files written on Windows; it is not part of the JSON. */
            if (index == 0 && n >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, n -= 3;
            bool too_long = full > (size_t)max_line;
            if (!too_long && blank(text, n)) continue;
            if (index % shard_n != shard_i) {
                /* Other shards' ids still count for duplicate detection, so every shard agrees on
                 * which line of a duplicated custom_id is the later one. */
                char *id = too_long ? NULL : peek_custom_id(text, n);
                if (id && batch_set_add(&seen_ids, id, strlen(id)) < 0) st = rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
                free(id);
                if (st != RWKV7_OK) break;
                continue;
            }
            struct batch_req *r = calloc(1, sizeof *r);
            enum rwkv7_status pst = RWKV7_ERR_OOM;
            if (r && too_long) {
                r->line = index;
                pst = batch_req_set_error(r, 400, "the line is %zu bytes, over the limit of %d bytes (--max-line)", full, max_line);
            } else if (r) {
                pst = batch_parse_request(text, n, index, &d, rwkv7_model_tokenizer(m), r);
            }
            if (pst == RWKV7_OK && !r->status && fail_hook(index)) {
                batch_req_drop_body(r);
                pst = batch_req_set_error(r, 500, "out of memory while setting up the request (RWKV7_BATCH_FAIL_LINES)");
            }
            if (pst != RWKV7_OK) {
                if (r) batch_req_free(r);
                free(r);
                if (g_stop_signal) break; /* parsing gave up on the signal: stop like between lines */
                st = rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
                break;
            }
            if (g_stop_signal && r->status == 400 && r->error && strstr(r->error, "json: interrupted")) {
                batch_req_free(r);
                free(r);
                break;
            }
            bool dup = false;
            if (r->custom_id) {
                int added = batch_set_add(&seen_ids, r->custom_id, strlen(r->custom_id));
                dup = added == 0;
                if (added < 0) st = RWKV7_ERR_OOM;
            }
            size_t k = batch_resume_key(key, sizeof key, index, r->custom_id);
            /* A checkpoint of this line is used now or never (not copied into the next sidecar). */
            long ce = ck.old.n > 0 ? batch_ckpt_find(&ck.old, index, r->custom_id) : -1;
            if (ce >= 0) ck.old.e[ce].used = true;
            if (st != RWKV7_OK) {
                st = rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
            } else if (batch_set_has(&done_keys, key, k)) {
                skipped++;
            } else if (dup && !r->status) {
                st = batch_req_set_error(r, 400, "duplicate custom_id '%s' (an earlier line has it)", r->custom_id);
                if (st == RWKV7_OK) st = write_error(&run, r);
            } else if (r->status) {
                st = write_error(&run, r);
            } else {
                bool taken = false;
                if (ce >= 0 && !dup) st = ckpt_continue(&ck, sched, r, ce, &taken);
                if (st == RWKV7_OK && !taken) st = batch_sched_add(sched, r);
                if (st == RWKV7_OK) continue; /* the scheduler owns r now */
            }
            batch_req_free(r);
            free(r);
            if (st != RWKV7_OK) break;
            stopping = max_requests > 0 && run.written >= max_requests;
        }
        if (st != RWKV7_OK) break;
        stopping = g_stop_signal || (max_requests > 0 && run.written >= max_requests) || over_time(max_runtime, t_start);
        if (stopping || batch_sched_running(sched) == 0) {
            if (stopping || eof) break;
            continue;
        }
        if ((st = batch_sched_step(sched, on_done, &run)) != RWKV7_OK) break;
        step_delay_hook();
        double t = now_ms();
        if (!no_progress && t - last_progress >= (tty ? 500 : 5000)) {
            long long pt, ct, gt;
            batch_sched_counts(sched, &pt, &ct, &gt);
            progress(run.written + skipped, total, run.errors, gt, (t - t0) / 1e3, (double)skipped, ck.continued, tty, false);
            last_progress = t;
        }
        if (ckpt_every > 0 && ck.path && t - last_ckpt >= ckpt_every * 1e3) {
            /* Not fatal: the run goes on, only the protection against SIGKILL is missing. */
            if (ckpt_write(&ck, sched, 0) != RWKV7_OK)
                host_errorf("rwkv7 batch: warning: periodic checkpoint failed: %s\n", rwkv7_last_error());
            last_ckpt = now_ms();
        }
    }
    if (ferror(in)) {
        host_errorf("rwkv7 batch: cannot read '%s'\n", in_path);
        if (st == RWKV7_OK) st = RWKV7_ERR_IO;
    }
    double wall = (now_ms() - t0) / 1e3;
    long long prompt_tok, cached_tok, gen_tok;
    batch_sched_counts(sched, &prompt_tok, &cached_tok, &gen_tok);
    int in_flight = batch_sched_running(sched);
    bool timed_out = over_time(max_runtime, t_start) && (in_flight > 0 || !eof);
    bool stopped = st == RWKV7_OK && (g_stop_signal || timed_out || (max_requests > 0 && run.written >= max_requests && (in_flight > 0 || !eof)));
    bool unused_old = false;
    for (long i = 0; i < ck.old.n; i++) unused_old |= !ck.old.e[i].used;
    enum rwkv7_status ck_st = RWKV7_OK;
    double ck_ms = 0;
    bool wrote_ckpt = false;
    if (ck.path && stopped && ckpt_grace > 0 && (in_flight > 0 || unused_old)) {
        /* The current step is done; save what runs, within the grace the scheduler gives. */
        double t = now_ms();
        ck_st = ckpt_write(&ck, sched, t + (double)ckpt_grace * 1e3);
        ck_ms = now_ms() - t;
        wrote_ckpt = ck_st == RWKV7_OK;
        if (ck_st != RWKV7_OK) host_errorf("rwkv7 batch: cannot checkpoint the requests in flight: %s\n", rwkv7_last_error());
    } else if (ck.path && st == RWKV7_OK && !stopped && eof && in_flight == 0) {
        unlink(ck.path); /* everything is written: nothing left to continue */
    } else if (ck.path && stopped && ckpt_grace > 0 && (ck.old.fd >= 0 || ckpt_every > 0)) {
        unlink(ck.path); /* stopped with nothing in flight: an older sidecar is all used */
    }
    if (!no_progress) progress(run.written + skipped, total, run.errors, gen_tok, wall, (double)skipped, ck.continued, tty, true);
    fprintf(stderr, "rwkv7 batch: %ld records written (%ld errors), %ld skipped as already done; prompt %lld tokens "
                    "evaluated + %lld from the prefix cache, generated %lld tokens; wall %.2f s; %.1f generated tok/s, "
                    "%.1f total tok/s\n",
            run.written, run.errors, skipped, prompt_tok, cached_tok, gen_tok, wall, wall > 0 ? (double)gen_tok / wall : 0.0,
            wall > 0 ? (double)(prompt_tok + gen_tok) / wall : 0.0);
    if (ck.continued > 0)
        fprintf(stderr, "rwkv7 batch: continued %ld requests from '%s' (%lld tokens not computed again)\n", ck.continued,
                ck.path, ck.continued_tokens);
    if (st != RWKV7_OK) {
        if (!run.write_failed) fprintf(stderr, "rwkv7 batch: %s\n", rwkv7_last_error());
        rc = run.write_failed ? 1 : host_status_exit(st);
        if (!rc) rc = 1;
    } else if (stopped) {
        const char *why = g_stop_signal ? (g_stop_signal == SIGINT ? "interrupted" : "terminated")
                          : timed_out   ? "stopped by --max-runtime"
                                        : "stopped by --max-requests";
        if (wrote_ckpt) {
            fprintf(stderr, "rwkv7 batch: %s; checkpointed %ld requests (%lld tokens) to '%s' in %.2f s", why, ck.saved,
                    ck.saved_tokens, ck.path, ck_ms / 1e3);
            if (ck.dropped > 0) fprintf(stderr, "; %ld more could not be saved within --checkpoint-grace and will start again", ck.dropped);
            fprintf(stderr, "; rerun with --resume to continue\n");
        } else {
            fprintf(stderr, "rwkv7 batch: %s; %d requests in flight were not written; rerun with --resume to finish\n", why,
                    in_flight);
        }
        rc = g_stop_signal || timed_out ? 1 : 0;
        if (ck_st != RWKV7_OK) rc = 1;
    }
    if (run.server_errors > 0) {
        /* A 5xx (out of memory, device, internal error) is not final: --resume runs it again, and
         * a scheduler that sees the non-zero exit retries the shard. */
        fprintf(stderr, "rwkv7 batch: %ld requests failed with a server error (5xx); rerun with --resume to retry them\n",
                run.server_errors);
        if (!rc) rc = 1;
    }

done:
    if (run.out) {
        /* fsync fails harmlessly on pipes and terminals; only lost data is an error. */
        bool ok = fflush(run.out) == 0;
        fsync(fileno(run.out));
        /* Records of retried requests were appended after their 5xx records: keep the last one
         * of each request. Done before the close, which would release the lock. */
        if (ok && !run.write_failed && retry_keys.n > 0) {
            long dropped = batch_compact_output(fileno(run.out), out_path);
            if (dropped < 0 && !rc) rc = 1;
            if (dropped > 0) host_errorf("rwkv7 batch: compacted '%s': %ld superseded records removed\n", out_path, dropped);
        }
        if (fclose(run.out) != 0 || !ok) {
            host_errorf("rwkv7 batch: cannot write '%s': %s\n", out_path, strerror(errno));
            if (!rc) rc = 1;
        }
    }
    if (in) fclose(in);
    free(line);
    batch_sched_free(sched);
    rwkv7_model_free(m);
    batch_set_free(&done_keys);
    batch_set_free(&retry_keys);
    batch_set_free(&seen_ids);
    batch_ckpt_close(&ck.old);
    free(ck.path);
    return rc;
}
