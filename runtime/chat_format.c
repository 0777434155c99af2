/* chat_format.c: the RWKV chat prompt renderer (chat_format.h; rwkv7-gguf.md section 6.5).
 * Output strings follow the official G1 templates (RWKV7-G1x-templates.txt) and llama.cpp's
 * "rwkv-world" template byte for byte; the header lists each think-mode ending. */
#include <stdlib.h>
#include <string.h>

#include "chat_format.h"
#include "status.h"

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t rwkv7_chat_clean(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '\r' && i + 1 < n && in[i + 1] == '\n') continue; /* CRLF -> LF */
        if (c == '\n' && o > 0 && out[o - 1] == '\n') continue;   /* collapse runs */
        out[o++] = c;
    }
    size_t a = 0;
    while (a < o && is_space(out[a])) a++;
    while (o > a && is_space(out[o - 1])) o--;
    memmove(out, out + a, o - a);
    return o - a;
}

static int role_is(const char *role, const char *name) {
    size_t i = 0;
    for (; role[i] && name[i]; i++) {
        char c = role[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != name[i]) return 0;
    }
    return role[i] == 0 && name[i] == 0;
}

/* Appends "Label: " + cleaned text (+ extra) + "\n\n"; dst has room (sized by the caller). */
static size_t put_turn(char *dst, const char *label, const char *text, int assistant,
                       const char *extra) {
    size_t o = strlen(label);
    memcpy(dst, label, o);
    dst[o++] = ':';
    dst[o++] = ' ';
    if (!text) text = "";
    if (assistant) {
        /* Replaying old reasoning costs context and was not how the model saw the turn. */
        for (const char *p = strstr(text, "</think>"); p; p = strstr(p + 1, "</think>"))
            text = p + 8;
    }
    o += rwkv7_chat_clean(text, strlen(text), dst + o);
    if (extra) {
        memcpy(dst + o, extra, strlen(extra));
        o += strlen(extra);
    }
    dst[o++] = '\n';
    dst[o++] = '\n';
    return o;
}

enum rwkv7_status rwkv7_chat_render(const char *system, const struct rwkv7_chat_msg *msgs,
                                    int n_msgs, enum rwkv7_think think, char **out) {
    static const char *const suffix[] = {"", " <think", " <think>\n</think", " <think",
                                         " <think"};
    *out = NULL;
    if ((int)think < 0 || (int)think > RWKV7_THINK_LOT)
        return rwkv7_fail(RWKV7_ERR_ARG, "chat: unknown think mode %d", (int)think);
    if (n_msgs < 0 || (n_msgs > 0 && !msgs))
        return rwkv7_fail(RWKV7_ERR_ARG, "chat: %d messages", n_msgs);
    const char *extra = think == RWKV7_THINK_BIT ? " think a bit"
                        : think == RWKV7_THINK_LOT ? " think a lot" : NULL;
    int last_user = -1;
    size_t cap = 64 + (system ? strlen(system) + 16 : 0);
    for (int i = 0; i < n_msgs; i++) {
        const char *r = msgs[i].role;
        if (!r || !(role_is(r, "system") || role_is(r, "user") || role_is(r, "assistant")))
            return rwkv7_fail(RWKV7_ERR_ARG, "chat: message %d has role '%s', expected system, "
                              "user or assistant", i, r ? r : "(null)");
        if (role_is(r, "user")) last_user = i;
        cap += 32 + (msgs[i].content ? strlen(msgs[i].content) : 0);
    }
    char *buf = malloc(cap);
    if (!buf) return rwkv7_fail(RWKV7_ERR_OOM, "chat: out of memory for %zu bytes", cap);
    size_t o = 0;
    if (system && system[0]) o += put_turn(buf + o, "System", system, 0, NULL);
    for (int i = 0; i < n_msgs; i++) {
        const char *r = msgs[i].role;
        if (role_is(r, "system")) o += put_turn(buf + o, "System", msgs[i].content, 0, NULL);
        else if (role_is(r, "user"))
            o += put_turn(buf + o, "User", msgs[i].content, 0, i == last_user ? extra : NULL);
        else o += put_turn(buf + o, "Assistant", msgs[i].content, 1, NULL);
    }
    memcpy(buf + o, "Assistant:", 10);
    o += 10;
    size_t sl = strlen(suffix[think]);
    memcpy(buf + o, suffix[think], sl);
    o += sl;
    buf[o] = 0;
    *out = buf;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_think_parse(const char *name, enum rwkv7_think *out) {
    static const char *const names[] = {"off", "on", "fake", "bit", "lot"};
    for (int i = 0; name && i < 5; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (enum rwkv7_think)i;
            return RWKV7_OK;
        }
    return rwkv7_fail(RWKV7_ERR_ARG, "chat: think mode '%s', expected off, on, fake, bit or lot",
                      name ? name : "(null)");
}
