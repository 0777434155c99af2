/* op_debug.h: the op door (every rwkv7_op_* wrapper ends in rwkv7_op_door) and the debug hooks
 * it runs; internal to runtime/. Public switches and their meaning: backend.h. */
#ifndef RWKV7_OP_DEBUG_H
#define RWKV7_OP_DEBUG_H

#include "backend.h"

/* Calls the backend's entry for op with its (already checked) argument struct, counting it in
 * be->n_ops and running the debug hooks that are on. */
enum rwkv7_status rwkv7_op_door(struct rwkv7_backend *be, enum rwkv7_op op, const void *args);
/* Reads RWKV7_SYNC_EACH_OP, RWKV7_CHECK_RESULTS and RWKV7_TRACE and turns the hooks on. */
enum rwkv7_status rwkv7_op_debug_from_env(struct rwkv7_backend *be);
/* Prints the trace summary (when tracing) and frees the debug state. */
void rwkv7_op_debug_free(struct rwkv7_backend *be);

#endif
