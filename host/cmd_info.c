/* cmd_info.c: `rwkv7 info -m FILE`: metadata, hyper-parameters, the tensor table, a per-type
 * histogram, parameter count and bytes read per decoded token. Loads the model on the CPU backend
 * (zero-copy mapping) so that every shape check runs, without touching a GPU. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dtype.h"
#include "gguf.h"

static void fmt_bytes(char *buf, size_t cap, double b) {
    if (b >= 1073741824.0) snprintf(buf, cap, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, cap, "%.2f MiB", b / 1048576.0);
    else if (b >= 1024.0) snprintf(buf, cap, "%.2f KiB", b / 1024.0);
    else snprintf(buf, cap, "%.0f B", b);
}

int cmd_info(int argc, char **argv) {
    struct model_opts mo = {0};
    bool no_tensors = false;
    const struct opt opts[] = {
        {"-m,--model", OPT_STR, &mo.model, "FILE", "RWKV-7 GGUF model file (required)"},
        {"--no-tensors", OPT_FLAG, &no_tensors, NULL, "omit the per-tensor table"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("info", "-m FILE [--no-tensors]", opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if (!mo.model) {
        fprintf(stderr, "rwkv7 info: no model given (-m FILE)\n");
        return 2;
    }
    struct rwkv7_gguf *g = NULL;
    enum rwkv7_status st = rwkv7_gguf_open(mo.model, &g);
    if (st != RWKV7_OK) {
        host_errorf("rwkv7 info: cannot load '%s': %s\n", mo.model, rwkv7_last_error());
        return host_status_exit(st);
    }
    /* A state file (docs/state-format.md) is a GGUF too: show its metadata and tensors. */
    struct rwkv7_gguf_str type;
    bool is_state = rwkv7_gguf_find_kv(g, "general.type") >= 0 &&
                    rwkv7_gguf_get_str(g, "general.type", &type) == RWKV7_OK && type.len == 5 &&
                    !memcmp(type.ptr, "state", 5);
    struct rwkv7_model *m = NULL;
    if (!is_state) {
        mo.backend = "cpu";
        mo.threads = 1;
        if ((rc = host_load_model("info", &mo, false, &m))) {
            rwkv7_gguf_free(g);
            return rc;
        }
    }
    char b1[32], b2[32];
    fmt_bytes(b1, sizeof b1, (double)rwkv7_gguf_file_size(g));
    printf("file: %s%s\nformat: GGUF v%u, %s, alignment %u, %lld tensors, %lld metadata keys\n\n", mo.model,
           is_state ? " (state file)" : "", rwkv7_gguf_version(g), b1, rwkv7_gguf_alignment(g),
           (long long)rwkv7_gguf_n_tensors(g), (long long)rwkv7_gguf_n_kv(g));

    printf("metadata:\n");
    for (int64_t i = 0; i < rwkv7_gguf_n_kv(g); i++) {
        char val[160];
        struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
        rwkv7_gguf_kv_format(g, i, val, sizeof val);
        printf("  %-48.*s = %s\n", (int)(k.len > 200 ? 200 : k.len), k.ptr, val);
    }
    if (is_state) {
        printf("\ntensors:\n");
        for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
            const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
            printf("  %-40s %-8s (%lld, %lld, %lld) %12llu\n", t->name, rwkv7_dtype_name(t->type), (long long)t->ne[0],
                   (long long)t->ne[1], (long long)t->ne[2], (unsigned long long)t->nbytes);
        }
        rwkv7_gguf_free(g);
        return 0;
    }

    const struct rwkv7_hparams *hp = rwkv7_model_hparams(m);
    printf("\nhyper-parameters:\n");
    printf("  n_vocab %d, n_embd %d, n_layer %d, n_ff %d, head_size %d, n_head %d\n", hp->n_vocab, hp->n_embd,
           hp->n_layer, hp->n_ff, hp->head_size, hp->n_head);
    printf("  lora ranks: decay %d, iclr %d, value-residual %d, gate %d; layer-norm eps %g\n", hp->lora_decay,
           hp->lora_iclr, hp->lora_vres, hp->lora_gate, (double)hp->norm_eps);
    fmt_bytes(b1, sizeof b1, (double)rwkv7_state_n_floats(hp) * 4.0);
    printf("  state per sequence: %s (fp32)\n", b1);

    uint64_t cnt[RWKV7_DTYPE_COUNT] = {0}, par[RWKV7_DTYPE_COUNT] = {0}, byt[RWKV7_DTYPE_COUNT] = {0};
    if (!no_tensors) printf("\ntensors:\n  %-40s %-8s %-24s %12s\n", "name", "type", "shape", "bytes");
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        uint64_t n = (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        cnt[t->type]++;
        par[t->type] += n;
        byt[t->type] += t->nbytes;
        if (no_tensors) continue;
        char shape[64];
        int o = snprintf(shape, sizeof shape, "(");
        for (int d = 0; d < t->n_dims; d++) o += snprintf(shape + o, sizeof shape - (size_t)o, d ? ", %lld" : "%lld", (long long)t->ne[d]);
        snprintf(shape + o, sizeof shape - (size_t)o, ")");
        printf("  %-40s %-8s %-24s %12llu\n", t->name, rwkv7_dtype_name(t->type), shape, (unsigned long long)t->nbytes);
    }
    printf("\ntypes:\n  %-8s %8s %14s %12s %7s\n", "type", "tensors", "params", "bytes", "bpw");
    for (int ty = 0; ty < RWKV7_DTYPE_COUNT; ty++) {
        if (!cnt[ty]) continue;
        fmt_bytes(b1, sizeof b1, (double)byt[ty]);
        printf("  %-8s %8llu %14llu %12s %7.3f\n", rwkv7_dtype_name(ty), (unsigned long long)cnt[ty],
               (unsigned long long)par[ty], b1, 8.0 * (double)byt[ty] / (double)par[ty]);
    }
    fmt_bytes(b1, sizeof b1, (double)rwkv7_model_weight_bytes(m));
    fmt_bytes(b2, sizeof b2, (double)rwkv7_model_bytes_per_token(m));
    printf("\nparameters: %llu (%.3f B)\nweights: %s\nbytes read per decoded token: %s (%llu)\n",
           (unsigned long long)rwkv7_model_n_params(m), rwkv7_model_n_params(m) / 1e9, b1, b2,
           (unsigned long long)rwkv7_model_bytes_per_token(m));
    rwkv7_gguf_free(g);
    rwkv7_model_free(m);
    return 0;
}
