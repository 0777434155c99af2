/* chat_format.h: renders a conversation into the RWKV World / G1 chat prompt (rwkv7-gguf.md
 * section 6.5, llama.cpp template "rwkv-world", ecosystem.md section 2.2):
 *   System: {sys}\n\nUser: {u1}\n\nAssistant: {a1}\n\nUser: {u2}\n\nAssistant:{suffix}
 * Every text is cleaned first: CRLF -> LF, any run of 2+ '\n' -> one '\n' ("\n\n" is the turn
 * separator in pretraining), then ASCII whitespace stripped at both ends. Assistant turns are
 * cleaned the same way and lose everything up to their last "</think>" (earlier reasoning is not
 * replayed, as llama.cpp's jinja template does). No "<s>" is added: prepend token 0 if wanted.
 * The prompt ends without a trailing space; the model writes the space itself. */
#ifndef RWKV7_CHAT_FORMAT_H
#define RWKV7_CHAT_FORMAT_H

#include <stddef.h>

#include "rwkv7.h"

/* G1 reasoning modes: how the final "Assistant:" turn is opened. */
enum rwkv7_think {
    RWKV7_THINK_OFF = 0,  /* "Assistant:"                   plain chat, any World model */
    RWKV7_THINK_ON = 1,   /* "Assistant: <think"            no '>': the model continues it */
    RWKV7_THINK_FAKE = 2, /* "Assistant: <think>\n</think"  empty reasoning, answer at once;
                             the official G1 template form, which ends without the closing '>'
                             so the model emits it (llama.cpp's jinja variant writes
                             "<think>\n</think>") */
    RWKV7_THINK_BIT = 3,  /* last user text + " think a bit", then "Assistant: <think"
                             (think-length control, G1 models from 2025-09-22) */
    RWKV7_THINK_LOT = 4,  /* last user text + " think a lot", then "Assistant: <think" */
};

/* One turn. role is "system", "user" or "assistant" (ASCII case-insensitive); content is
 * NUL-terminated UTF-8 (NULL = empty). */
struct rwkv7_chat_msg {
    const char *role;
    const char *content;
};

/* Renders the prompt into a malloc'ed NUL-terminated string (*out; free() it). system may be NULL
 * or empty for none; it is emitted before the messages, which may hold system turns of their own.
 * The generation turn "Assistant:" + the think suffix is always appended. With THINK_BIT/LOT and
 * no user message there is nothing to append the phrase to, and only the suffix is used.
 * RWKV7_ERR_ARG for an unknown role or think mode (message names it), RWKV7_ERR_OOM. */
enum rwkv7_status rwkv7_chat_render(const char *system, const struct rwkv7_chat_msg *msgs,
                                    int n_msgs, enum rwkv7_think think, char **out);

/* The cleaning step alone: writes at most n bytes to out (which may equal in) and returns the
 * length. */
size_t rwkv7_chat_clean(const char *in, size_t n, char *out);

/* Parses a think mode name for flags and requests: "off", "on", "fake", "bit", "lot".
 * RWKV7_ERR_ARG for anything else. */
enum rwkv7_status rwkv7_think_parse(const char *name, enum rwkv7_think *out);

#endif
