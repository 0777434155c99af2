/* batch_ckpt.c: the OUT.inflight sidecar of `rwkv7 batch` (docs/state-format.md, "Batch
 * checkpoints"): the requests in flight when a run stopped, each with its RWKV state, sampler
 * state and output so far, so --resume continues them instead of starting again. One file, written
 * to a temporary beside it, fsync'ed and renamed (a kill leaves the old or the new sidecar, never
 * half of one). A checksum over the whole file and the id in its header (model, configuration,
 * input) decide whether it is used at all: a sidecar that fails either is ignored with one warning
 * line, and its requests start fresh, so a foreign state is never mixed into a run. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "args.h"
#include "status.h"

#define CKPT_MAGIC "RWKV7INF"
#define CKPT_VERSION 1u
#define CKPT_END 0x21444e45u /* "END!" */
#define CKPT_HEADER 48       /* magic 8, version 4, endian 4, four ids 32 */
#define CKPT_TRAILER 16      /* END! 4, entries 4, checksum 8 */
#define NO_ID 0xFFFFFFFFu

uint64_t batch_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

struct batch_ckpt_writer {
    FILE *f;
    char *path, *tmp;
    uint64_t sum, n_state;
    long n;
    bool failed;
};

static void w_bytes(struct batch_ckpt_writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->failed = true;
    w->sum = batch_fnv1a(w->sum, p, n);
}
static void w_u32(struct batch_ckpt_writer *w, uint32_t v) { w_bytes(w, &v, 4); }
static void w_u64(struct batch_ckpt_writer *w, uint64_t v) { w_bytes(w, &v, 8); }

enum rwkv7_status batch_ckpt_begin(const char *path, const struct batch_ckpt_id *id, struct batch_ckpt_writer **out) {
    *out = NULL;
    struct batch_ckpt_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n + 5))) {
        if (w) free(w->path);
        free(w);
        return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory for a checkpoint");
    }
    snprintf(w->tmp, n + 5, "%s.tmp", path);
    if (!(w->f = fopen(w->tmp, "wb"))) {
        enum rwkv7_status st = rwkv7_fail(RWKV7_ERR_IO, "cannot write '%s': %s", w->tmp, strerror(errno));
        free(w->tmp);
        free(w->path);
        free(w);
        return st;
    }
    w->sum = BATCH_FNV_INIT;
    w_bytes(w, CKPT_MAGIC, 8);
    w_u32(w, CKPT_VERSION);
    w_u32(w, 0x01020304u); /* host byte order: read back only by the same kind of machine */
    w_u64(w, id->model_hash);
    w_u64(w, id->config_hash);
    w_u64(w, id->input_hash);
    w_u64(w, id->n_state);
    w->n_state = id->n_state;
    *out = w;
    return RWKV7_OK;
}

static uint64_t entry_size(const struct batch_ckpt_seq *c, uint64_t n_state) {
    return 8 + 4 + (c->custom_id ? strlen(c->custom_id) : 0) + 8 + 8 + 12 + 4 + c->n_text + 4 + c->n_held + 4 +
           c->n_sampler + n_state * 4;
}

/* Entry: size u64 (of what follows), line i64, custom_id (u32 length or NO_ID, bytes), u8
 * decoding, u8 UTF-8 count, 4 UTF-8 bytes, 2 zero bytes, pos u64, next_tok i32, n_gen i32, n_fed
 * i32, then text, held tail and sampler blob (u32 length + bytes each), state f32[n_state]. */
enum rwkv7_status batch_ckpt_put(struct batch_ckpt_writer *w, const struct batch_ckpt_seq *c) {
    w_u64(w, entry_size(c, w->n_state));
    int64_t line = c->line;
    w_bytes(w, &line, 8);
    size_t n_id = c->custom_id ? strlen(c->custom_id) : 0;
    w_u32(w, c->custom_id ? (uint32_t)n_id : NO_ID);
    w_bytes(w, c->custom_id, n_id);
    unsigned char fl[8] = {c->decoding, (unsigned char)c->u8_n, c->u8_pend[0], c->u8_pend[1], c->u8_pend[2], c->u8_pend[3], 0, 0};
    w_bytes(w, fl, 8);
    w_u64(w, c->pos);
    int32_t v[3] = {c->next_tok, c->n_gen, c->n_fed};
    w_bytes(w, v, 12);
    w_u32(w, (uint32_t)c->n_text);
    w_bytes(w, c->text, c->n_text);
    w_u32(w, (uint32_t)c->n_held);
    w_bytes(w, c->held, c->n_held);
    w_u32(w, (uint32_t)c->n_sampler);
    w_bytes(w, c->sampler, c->n_sampler);
    w_bytes(w, c->state, (size_t)w->n_state * 4);
    w->n++;
    return w->failed ? rwkv7_fail(RWKV7_ERR_IO, "cannot write '%s': %s", w->tmp, strerror(errno)) : RWKV7_OK;
}

void batch_ckpt_abort(struct batch_ckpt_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w);
}

enum rwkv7_status batch_ckpt_commit(struct batch_ckpt_writer *w, long *n_entries) {
    w_u32(w, CKPT_END);
    w_u32(w, (uint32_t)w->n);
    uint64_t sum = w->sum;
    w_bytes(w, &sum, 8);
    bool ok = !w->failed && fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
    ok = fclose(w->f) == 0 && ok;
    w->f = NULL;
    if (!ok || rename(w->tmp, w->path) != 0) {
        enum rwkv7_status st = rwkv7_fail(RWKV7_ERR_IO, "cannot write '%s': %s", w->tmp, strerror(errno));
        batch_ckpt_abort(w);
        return st;
    }
    /* The rename itself is durable only once its directory is synced. */
    char *slash = strrchr(w->path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - w->path) + 1 : 1, slash ? w->path : ".");
    int dfd = open(dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (n_entries) *n_entries = w->n;
    free(w->tmp);
    free(w->path);
    free(w);
    return RWKV7_OK;
}

/* ---- reading ---- */

struct cursor {
    const unsigned char *p;
    size_t n, at;
    bool bad;
};

static const void *take(struct cursor *c, size_t n) {
    if (c->bad || n > c->n - c->at) {
        c->bad = true;
        return NULL;
    }
    const void *r = c->p + c->at;
    c->at += n;
    return r;
}
static uint32_t take_u32(struct cursor *c) {
    uint32_t v = 0;
    const void *p = take(c, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}
static uint64_t take_u64(struct cursor *c) {
    uint64_t v = 0;
    const void *p = take(c, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

/* Parses one entry body (after its size field) into *c, pointers into the body. */
static bool parse_entry(const unsigned char *body, size_t n, uint64_t n_state, struct batch_ckpt_seq *c, size_t *n_id_out) {
    struct cursor k = {body, n, 0, false};
    memset(c, 0, sizeof *c);
    c->line = (long)(int64_t)take_u64(&k);
    uint32_t n_id = take_u32(&k);
    const char *id = n_id == NO_ID ? NULL : take(&k, n_id);
    const unsigned char *fl = take(&k, 8);
    c->pos = take_u64(&k);
    const unsigned char *v = take(&k, 12);
    uint32_t nt = take_u32(&k);
    c->text = take(&k, nt);
    uint32_t nh = take_u32(&k);
    c->held = take(&k, nh);
    uint32_t ns = take_u32(&k);
    c->sampler = take(&k, ns);
    c->state = take(&k, (size_t)n_state * 4);
    if (k.bad || k.at != n || !fl || fl[0] > 1 || fl[1] > 3 || c->line < 0) return false;
    if (id && (n_id == 0 || memchr(id, 0, n_id))) return false;
    c->custom_id = id; /* not terminated: *n_id_out bytes */
    *n_id_out = id ? n_id : 0;
    c->decoding = fl[0];
    c->u8_n = fl[1];
    memcpy(c->u8_pend, fl + 2, 4);
    int32_t vv[3];
    memcpy(vv, v, 12);
    c->next_tok = vv[0];
    c->n_gen = vv[1];
    c->n_fed = vv[2];
    c->n_text = nt;
    c->n_held = nh;
    c->n_sampler = ns;
    /* The state is read through memcpy by rwkv7_state_set; check it is finite here. */
    for (uint64_t i = 0; i < n_state; i++) {
        float f;
        memcpy(&f, (const unsigned char *)c->state + i * 4, 4);
        if (!isfinite(f)) return false;
    }
    return true;
}

void batch_ckpt_close(struct batch_ckpt_file *f) {
    if (f->fd >= 0) close(f->fd);
    for (long i = 0; i < f->n; i++) free(f->e[i].custom_id);
    free(f->e);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

static bool read_at(int fd, void *p, size_t n, uint64_t off) {
    unsigned char *b = p;
    while (n > 0) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return true;
}

/* Checks the whole file; returns NULL when usable, else why not (for the one warning line). */
static const char *scan(struct batch_ckpt_file *f, const struct batch_ckpt_id *id, uint64_t size, bool *oom) {
    unsigned char h[CKPT_HEADER];
    if (size < CKPT_HEADER + CKPT_TRAILER || !read_at(f->fd, h, CKPT_HEADER, 0)) return "truncated";
    if (memcmp(h, CKPT_MAGIC, 8) != 0) return "not a checkpoint of rwkv7 batch";
    uint32_t ver, endian;
    uint64_t ids[4];
    memcpy(&ver, h + 8, 4);
    memcpy(&endian, h + 12, 4);
    memcpy(ids, h + 16, 32);
    if (ver != CKPT_VERSION || endian != 0x01020304u) return "another format version or byte order";
    uint64_t sum = batch_fnv1a(BATCH_FNV_INIT, h, CKPT_HEADER), off = CKPT_HEADER;
    unsigned char *buf = NULL;
    size_t cap = 0;
    const char *why = NULL;
    struct batch_ckpt_seq c;
    while (!why && off + CKPT_TRAILER < size) {
        uint64_t n;
        if (size - off < 8 + CKPT_TRAILER || !read_at(f->fd, &n, 8, off) || n > size - off - 8 - CKPT_TRAILER) {
            why = "truncated or corrupt";
            break;
        }
        if (n > cap) {
            unsigned char *b = realloc(buf, n);
            if (!b) {
                *oom = true;
                break;
            }
            buf = b;
            cap = n;
        }
        if (!read_at(f->fd, buf, n, off + 8)) {
            why = "truncated";
            break;
        }
        sum = batch_fnv1a(batch_fnv1a(sum, &n, 8), buf, n);
        size_t n_id = 0;
        if (!parse_entry(buf, n, ids[3], &c, &n_id)) {
            why = "corrupt entry";
            break;
        }
        struct batch_ckpt_entry *e = realloc(f->e, (size_t)(f->n + 1) * sizeof *e);
        if (e) f->e = e;
        char *cid = c.custom_id ? malloc(n_id + 1) : NULL;
        if (!e || (c.custom_id && !cid)) {
            *oom = true;
            break;
        }
        if (cid) {
            memcpy(cid, c.custom_id, n_id);
            cid[n_id] = 0;
        }
        struct batch_ckpt_entry *ne = &f->e[f->n];
        memset(ne, 0, sizeof *ne);
        ne->line = c.line;
        ne->custom_id = cid;
        ne->offset = off;
        ne->size = n + 8;
        f->n++;
        off += 8 + n;
    }
    free(buf);
    if (why || *oom) return why;
    unsigned char t[CKPT_TRAILER];
    if (off + CKPT_TRAILER != size || !read_at(f->fd, t, CKPT_TRAILER, off)) return "truncated";
    uint32_t end, count;
    uint64_t want;
    memcpy(&end, t, 4);
    memcpy(&count, t + 4, 4);
    memcpy(&want, t + 8, 8);
    sum = batch_fnv1a(sum, t, 8);
    if (end != CKPT_END || count != (uint64_t)f->n) return "truncated or corrupt";
    if (sum != want) return "checksum mismatch (corrupt)";
    if (ids[0] != id->model_hash) return "written for another model";
    if (ids[3] != id->n_state) return "written for another model";
    if (ids[1] != id->config_hash) return "written with another backend or other options";
    if (ids[2] != id->input_hash) return "written for another input file";
    f->n_state = ids[3];
    return NULL;
}

enum rwkv7_status batch_ckpt_open(const char *path, const struct batch_ckpt_id *id, struct batch_ckpt_file *f) {
    memset(f, 0, sizeof *f);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        if (errno != ENOENT) host_errorf("rwkv7 batch: warning: cannot read checkpoint '%s' (%s); its requests start fresh\n", path, strerror(errno));
        return RWKV7_OK;
    }
    struct stat st;
    bool oom = false;
    const char *why = fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode) ? "not a regular file" : scan(f, id, (uint64_t)st.st_size, &oom);
    if (oom) {
        batch_ckpt_close(f);
        return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory reading '%s'", path);
    }
    if (why) {
        host_errorf("rwkv7 batch: warning: ignoring checkpoint '%s': %s; its requests start fresh\n", path, why);
        batch_ckpt_close(f);
    }
    return RWKV7_OK;
}

long batch_ckpt_find(const struct batch_ckpt_file *f, long line, const char *custom_id) {
    for (long i = 0; i < f->n; i++) {
        const struct batch_ckpt_entry *e = &f->e[i];
        if (e->used || e->line != line) continue;
        if (!custom_id != !e->custom_id || (custom_id && strcmp(custom_id, e->custom_id) != 0)) continue;
        return i;
    }
    return -1;
}

enum rwkv7_status batch_ckpt_read(const struct batch_ckpt_file *f, long i, struct batch_ckpt_seq *c, void **buf) {
    const struct batch_ckpt_entry *e = &f->e[i];
    *buf = malloc(e->size);
    if (!*buf) return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory reading a checkpoint");
    size_t n_id;
    if (!read_at(f->fd, *buf, e->size, e->offset) ||
        !parse_entry((unsigned char *)*buf + 8, e->size - 8, f->n_state, c, &n_id)) {
        free(*buf);
        *buf = NULL;
        return rwkv7_fail(RWKV7_ERR_FORMAT, "the checkpoint of line %ld cannot be read back", e->line);
    }
    c->custom_id = e->custom_id;
    return RWKV7_OK;
}

enum rwkv7_status batch_ckpt_copy_unused(const struct batch_ckpt_file *f, struct batch_ckpt_writer *w, long *n_copied) {
    *n_copied = 0;
    for (long i = 0; i < f->n; i++) {
        if (f->e[i].used) continue;
        void *buf = malloc(f->e[i].size);
        if (!buf) return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory copying a checkpoint");
        bool ok = read_at(f->fd, buf, f->e[i].size, f->e[i].offset);
        if (ok) {
            w_bytes(w, buf, f->e[i].size);
            w->n++;
            (*n_copied)++;
        }
        free(buf);
        if (w->failed) return rwkv7_fail(RWKV7_ERR_IO, "cannot write '%s': %s", w->tmp, strerror(errno));
    }
    return RWKV7_OK;
}
