/* batch.h: the pieces of `rwkv7 batch` (OpenAI/vLLM batch JSONL, ecosystem.md section 2.5).
 * batch_io.c turns one input line into a runnable request or an error record and formats output
 * records; batch_sched.c runs requests with continuous batching (one eval call per decode step
 * for all running sequences); batch_ckpt.c saves and reads the requests in flight (OUT.inflight)
 * for preemption. A request owns its sampler, so its tokens depend only on its own
 * seed and prompt, never on what runs beside it (batch invariance). */
#ifndef RWKV7_HOST_BATCH_H
#define RWKV7_HOST_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_format.h"
#include "json.h"
#include "rwkv7.h"
#include "sampler.h"

/* Command-line defaults that request bodies override field by field. */
struct batch_defaults {
    struct rwkv7_sampler_params sp; /* seed ignored: see batch_seed */
    uint64_t batch_seed;            /* a request without "seed" uses a mix of this and its line */
    int max_tokens;
    int max_prompt_tokens;
    bool ignore_eos;
    enum rwkv7_think think;
    struct json_limits json_limits; /* for request lines (its stop flag: a signal arrived) */
};

struct batch_req {
    long line;         /* 0-based physical line of the input file */
    char *custom_id;   /* NULL when the line has none (its error record then says null) */
    bool chat;         /* /v1/chat/completions */
    int status;        /* 0: runnable; otherwise the HTTP code of its error record */
    char *error;       /* the error message when status != 0 */
    char *model;       /* body "model", echoed in the response; NULL = the model file name */
    int32_t *prompt;
    size_t n_prompt;
    int max_tokens;
    bool ignore_eos;
    int32_t *stop_ids;
    int n_stop_ids;
    struct rwkv7_sampler *smp;
    struct rwkv7_stop *stop;
    /* Set by `rwkv7 serve` only (zero for batch lines; batch_req_free leaves seg_ends alone, its
     * owner frees it): */
    void *user;        /* the server's job, handed back in the callbacks */
    size_t *seg_ends;  /* ascending prompt positions (turn ends, chat_segments.h) where prefill
                          cuts and the prefix cache stores; NULL: cut and store every --chunk */
    int n_seg;
    bool keep_turn;    /* chat without think: after the reply, cache the state the next turn of
                          this conversation starts from (batch_sched.c, extend_turn) */
    size_t n_cached;   /* set by the scheduler: prompt tokens restored from the prefix cache */
    bool want_logprobs; /* report each sampled token's log-probability (batch_logprob_fn) */
    int n_top_logprobs; /* ... and that many most likely alternatives, 0..BATCH_MAX_TOP_LOGPROBS */
};
#define BATCH_MAX_TOP_LOGPROBS 20

/* Parses line[0..n) into *r. Problems with the line become r->status = 400 and r->error, with
 * r->custom_id set when it could be read. Returns RWKV7_ERR_OOM only when memory runs out. */
enum rwkv7_status batch_parse_request(const char *line, size_t n, long index, const struct batch_defaults *d,
                                      const struct rwkv7_tokenizer *tok, struct batch_req *r);
void batch_req_free(struct batch_req *r);
/* Frees what a parsed body holds (prompt, stops, sampler), for a request turned into an error. */
void batch_req_drop_body(struct batch_req *r);
/* Makes r an error record (replacing any previous state but the line and custom_id). */
enum rwkv7_status batch_req_set_error(struct batch_req *r, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* One output line (with its '\n') for a finished request or an error record. */
void batch_format_result(struct json_buf *b, const struct batch_req *r, const char *model, long long created,
                         const char *text, size_t n_text, const char *finish, int n_gen);
void batch_format_error(struct json_buf *b, const struct batch_req *r);

/* A set of byte strings (custom_ids, resume keys) with a counter each; open addressing, grows
 * as needed. */
struct batch_set {
    char **keys;
    size_t *lens;
    long *vals;
    size_t n, cap;
};
/* Adds key (its counter 0); returns 1 if it was new, 0 if already there, -1 when out of memory. */
int batch_set_add(struct batch_set *s, const char *key, size_t n);
bool batch_set_has(const struct batch_set *s, const char *key, size_t n);
/* The counter of key, or NULL when key is not in the set. */
long *batch_set_val(const struct batch_set *s, const char *key, size_t n);
void batch_set_free(struct batch_set *s);
/* The resume key of a record: its line and custom_id, so a rerun skips exactly the lines whose
 * record is already written (also error records of duplicate or missing custom_ids). */
size_t batch_resume_key(char *buf, size_t cap, long line, const char *custom_id);

/* Reads the output file open (read-write, locked) as fd for --resume: adds the key of every
 * complete record with a final status (2xx, 4xx) to done and of every 5xx record (out of memory,
 * device lost, internal: worth retrying) to retry, and cuts a truncated last line (a kill
 * mid-write) off the file. Returns the number of records, or -1 with a message on stderr. */
long batch_scan_output(int fd, const char *path, struct batch_set *done, struct batch_set *retry);
/* Rewrites the output file (fd, at path) so that each request keeps only its last record:
 * written to a temporary file beside it, fsync'ed, then renamed over it, so a crash leaves the
 * old or the new file, never a mix. Returns the number of records dropped, or -1 (message on
 * stderr; the original is untouched). The caller keeps fd (and its lock) open until after. */
long batch_compact_output(int fd, const char *path);

/* ---- scheduler (batch_sched.c) ---- */

struct batch_sched;
struct rwkv7_prefix_cache;
/* Called once per finished request, in completion order. The scheduler frees r afterwards. A
 * sequence that failed (non-finite logits) arrives with r->status 500 and r->error set. */
typedef enum rwkv7_status (*batch_done_fn)(void *user, const struct batch_req *r, const char *text, size_t n_text,
                                           const char *finish, int n_gen);

/* parallel: slots (sequences in flight); chunk: prefill tokens per sequence per step;
 * cache_bytes: budget of the prompt prefix cache (runtime/prefix_cache.h), 0 = none. */
enum rwkv7_status batch_sched_init(struct rwkv7_model *m, int parallel, int chunk, size_t cache_bytes,
                                   struct batch_sched **out);
void batch_sched_free(struct batch_sched *s);
int batch_sched_free_slots(const struct batch_sched *s);
int batch_sched_running(const struct batch_sched *s);
/* Takes a runnable request (status 0); the scheduler owns it from here. */
enum rwkv7_status batch_sched_add(struct batch_sched *s, struct batch_req *r);
/* One step: prefill chunks of the sequences still reading their prompt (several sequences of
 * equal chunk length per eval call), then one eval call that decodes every other sequence. */
enum rwkv7_status batch_sched_step(struct batch_sched *s, batch_done_fn done, void *user);
/* Called with every piece of output text as it is produced (streaming); NULL: none. */
typedef void (*batch_emit_fn)(void *user, const struct batch_req *r, const char *text, size_t n);
void batch_sched_set_emit(struct batch_sched *s, batch_emit_fn emit, void *user);
/* Called for every sampled token of a request with want_logprobs (not for token 0 or a stop
 * token that ends it): its log-probability under the model (log-softmax of the logits, before
 * temperature and truncation) and the n_top most likely tokens with theirs, most likely first.
 * The user pointer is the one given to batch_sched_set_emit. */
typedef void (*batch_logprob_fn)(void *user, const struct batch_req *r, int32_t token, float logprob,
                                 const int32_t *top, const float *top_logprob, int n_top);
void batch_sched_set_logprob(struct batch_sched *s, batch_logprob_fn fn);
/* Drops the running request r (a client went away) without calling done; frees it and its slot.
 * Returns false when r is not running (already finished). */
bool batch_sched_cancel(struct batch_sched *s, const struct batch_req *r);
/* Slots busy after their request finished, caching its conversation state (keep_turn). */
int batch_sched_tails(const struct batch_sched *s);
/* The prefix cache (NULL when off), for statistics. */
const struct rwkv7_prefix_cache *batch_sched_cache(const struct batch_sched *s);
/* Totals so far: prompt tokens evaluated, prompt tokens restored from the prefix cache instead,
 * tokens generated. */
void batch_sched_counts(const struct batch_sched *s, long long *prompt_tokens, long long *cached_tokens,
                        long long *gen_tokens);


/* ---- checkpoints of requests in flight (batch_sched.c, batch_ckpt.c; docs/state-format.md) ----
 * Everything a running sequence needs to go on exactly as if never stopped: its RWKV state, the
 * token sampled but not fed yet, the sampler's state, the output text so far with the UTF-8 and
 * stop-string matcher tails. Pointers are borrowed. */
struct batch_ckpt_seq {
    long line;
    const char *custom_id;   /* NULL: none */
    bool decoding;           /* false: still reading its prompt, pos tokens in */
    uint64_t pos;            /* prompt tokens evaluated (== n_prompt once decoding) */
    int32_t next_tok;        /* decoding: the token to feed next */
    int n_gen, n_fed;
    const char *text;        /* released output text so far */
    size_t n_text;
    unsigned char u8_pend[4];
    int u8_n;
    const char *held;        /* stop-string matcher's held tail */
    size_t n_held;
    const void *sampler;     /* rwkv7_sampler_state_get blob */
    size_t n_sampler;
    const float *state;      /* rwkv7_state_n_floats floats */
};
/* Called for every running sequence worth saving; r is its request. */
typedef enum rwkv7_status (*batch_ckpt_fn)(void *user, const struct batch_req *r, const struct batch_ckpt_seq *c);
/* Hands every running sequence (not yet finished, with work done) to fn. Sequences whose turn is
 * over (serve tails) are skipped. Stops at the first status fn returns other than RWKV7_OK. */
enum rwkv7_status batch_sched_checkpoint(struct batch_sched *s, batch_ckpt_fn fn, void *user);
/* Takes a runnable request like batch_sched_add, but continues it from c (which must come from a
 * request of the same line, parsed with the same options): no prefill of what c covers, the
 * sampler and matchers as they were. RWKV7_ERR_FORMAT (nothing taken, r still the caller's) when
 * c does not fit r: then add it fresh. */
enum rwkv7_status batch_sched_add_restored(struct batch_sched *s, struct batch_req *r, const struct batch_ckpt_seq *c);

/* What a checkpoint is tied to: a sidecar with any other value is refused as a whole. */
struct batch_ckpt_id {
    uint64_t model_hash;  /* rwkv7_model_hash */
    uint64_t config_hash; /* backend, invariance, chunk and the request defaults (cmd_batch.c) */
    uint64_t input_hash;  /* the input file's bytes */
    uint64_t n_state;     /* floats per state */
};
uint64_t batch_fnv1a(uint64_t h, const void *p, size_t n);
#define BATCH_FNV_INIT 0xcbf29ce484222325ull

/* Writing OUT.inflight: begin makes path.tmp, put appends sequences, copy appends an unused
 * entry of an older sidecar, commit writes the trailer, fsyncs and renames over path (abort
 * removes the temporary). */
struct batch_ckpt_writer;
enum rwkv7_status batch_ckpt_begin(const char *path, const struct batch_ckpt_id *id, struct batch_ckpt_writer **out);
enum rwkv7_status batch_ckpt_put(struct batch_ckpt_writer *w, const struct batch_ckpt_seq *c);
enum rwkv7_status batch_ckpt_commit(struct batch_ckpt_writer *w, long *n_entries);
void batch_ckpt_abort(struct batch_ckpt_writer *w);

/* A sidecar read for --resume: entries located, checksummed and checked against the id; the
 * file stays open so entries are read only when their line comes up. */
struct batch_ckpt_entry {
    long line;
    char *custom_id;
    uint64_t offset, size; /* of the entry's bytes in the file */
    bool used;             /* continued (or dropped) in this run */
};
struct batch_ckpt_file {
    int fd;                /* -1: none */
    struct batch_ckpt_entry *e;
    long n;
    uint64_t n_state;
};
/* Opens path if it exists. A missing file gives n = 0; a corrupt, truncated or foreign one gives
 * n = 0 and one warning line on stderr (its requests then start fresh). RWKV7_ERR_OOM only. */
enum rwkv7_status batch_ckpt_open(const char *path, const struct batch_ckpt_id *id, struct batch_ckpt_file *f);
/* The unused entry of line with custom_id, or -1. */
long batch_ckpt_find(const struct batch_ckpt_file *f, long line, const char *custom_id);
/* Reads entry i into *c; its pointers point into *buf (free it after use). RWKV7_ERR_IO or
 * RWKV7_ERR_FORMAT with a message when the bytes changed since open. */
enum rwkv7_status batch_ckpt_read(const struct batch_ckpt_file *f, long i, struct batch_ckpt_seq *c, void **buf);
/* Appends the unused entries of f to w (so a second stop before they ran keeps them). */
enum rwkv7_status batch_ckpt_copy_unused(const struct batch_ckpt_file *f, struct batch_ckpt_writer *w, long *n_copied);
void batch_ckpt_close(struct batch_ckpt_file *f);

#endif
