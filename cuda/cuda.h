/* cuda.h: the C entry points of the CUDA backend (include from runtime/backend.c and host/ only).
 * rwkv7_backend_cuda_init itself is declared in backend.h under RWKV7_HAVE_CUDA; everything else
 * the backend does is reached through its vtable. */
#ifndef RWKV7_CUDA_H
#define RWKV7_CUDA_H

#include <stdio.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the CUDA backend on device ("CUDA0", "cuda:1", "1"; NULL or "" = device 0). Returns
 * RWKV7_ERR_UNSUPPORTED with "cuda: no CUDA driver found" / "cuda: no CUDA device" when CUDA
 * cannot run here (never crashes), RWKV7_ERR_ARG for a device that does not exist. */
enum rwkv7_status rwkv7_backend_cuda_init(const char *device, struct rwkv7_backend **out);

/* One line per CUDA device for `rwkv7 devices` ("CUDA0: NVIDIA H100 ..., cc 9.0, 132 SMs,
 * 79.1 GiB"), or one line saying why there is none. */
void rwkv7_cuda_print_devices(FILE *f);

#ifdef __cplusplus
}
#endif
#endif
