/* chat_segments.h: tokenizing a rendered chat prompt (chat_format.h) turn by turn, so that the
 * tokens of a conversation's earlier turns are a prefix of the tokens of every later request of
 * the same conversation (one tokenization of the whole text could merge bytes across a turn
 * boundary). `rwkv7 serve` keys its prefix cache on these tokens to reuse a conversation's state.
 * Cuts: after every "\n\n" (the turn separator; cleaned turn texts never hold one) and after
 * every "Assistant:" that opens a turn, so a reply's history text " {reply}\n\n" is a segment of
 * its own whose tokens can be compared with the tokens the model generated. */
#ifndef RWKV7_HOST_CHAT_SEGMENTS_H
#define RWKV7_HOST_CHAT_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

/* Tokenizes text[0..n) segment by segment into *ids (malloc'ed, *n_ids tokens) and writes the
 * token position after each segment to *ends (malloc'ed, *n_ends entries, ascending, the last one
 * == *n_ids). RWKV7_ERR_OOM or a tokenizer error; nothing to free then. */
enum rwkv7_status chat_tokenize_turns(const struct rwkv7_tokenizer *tok, const char *text, size_t n, int32_t **ids,
                                      size_t *n_ids, size_t **ends, int *n_ends);

/* The tokens that follow "Assistant:" when a reply comes back as an assistant message in the
 * next request: " " + the cleaned reply (reasoning up to its last "</think>" dropped) + "\n\n". */
enum rwkv7_status chat_reply_tokens(const struct rwkv7_tokenizer *tok, const char *reply, size_t n, int32_t **ids,
                                    size_t *n_ids);

#endif
