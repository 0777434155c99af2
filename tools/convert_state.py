#!/usr/bin/env python3
"""convert_state.py: converts an RWKV-7 initial state (state tuning output: a .pth, or a
.safetensors with the same keys) into an rwkv7 state file (docs/state-format.md).

The source holds one tensor per layer, blocks.{i}.att.time_state, of shape (H, N, N) laid out
[h][key j][value i]; our WKV layout is [h][value i][key j] (rwkv7-gguf.md section 5.1), so each
head is transposed, as ChatRWKV's API_DEMO_CHAT does with .transpose(1, 2). Token shifts are not
trained and start at zero: the file simply omits them, which the loader reads as zeros. No model
hash is written (the state does not name a model file); rwkv7 checks the shapes instead.

Usage: python3 tools/convert_state.py IN.pth OUT.gguf [--note TEXT]
Needs torch (and safetensors for .safetensors input). The GGUF is written here with struct, so
the gguf package is not needed.
"""
import argparse
import os
import re
import struct
import sys

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32
T_U32, T_STRING = 4, 8
DTYPE_F32 = 0


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv_u32(key, v):
    return gguf_str(key) + struct.pack("<I", T_U32) + struct.pack("<I", v)


def kv_str(key, v):
    return gguf_str(key) + struct.pack("<I", T_STRING) + gguf_str(v)


def pad(n):
    return (ALIGN - n % ALIGN) % ALIGN


def load_states(path):
    import torch

    if path.endswith(".safetensors") or path.endswith(".st"):
        from safetensors.torch import load_file

        sd = load_file(path)
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        sys.exit(f"convert_state: {path} is not a state dict")
    layers = {}
    for k, v in sd.items():
        m = re.fullmatch(r"blocks\.(\d+)\.att\.time_state", k)
        if m:
            layers[int(m.group(1))] = v
    if not layers:
        sys.exit(f"convert_state: {path} has no blocks.N.att.time_state tensors")
    n_layer = max(layers) + 1
    missing = [i for i in range(n_layer) if i not in layers]
    if missing:
        sys.exit(f"convert_state: layers {missing} have no time_state")
    out, shape = [], None
    for i in range(n_layer):
        t = layers[i].detach().to(torch.float32).cpu()
        if t.dim() == 4 and t.shape[0] == 1:  # some trainers keep a batch axis
            t = t[0]
        if t.dim() != 3 or t.shape[1] != t.shape[2]:
            sys.exit(f"convert_state: blocks.{i}.att.time_state has shape {tuple(t.shape)}, expected (H, N, N)")
        if shape is not None and tuple(t.shape) != shape:
            sys.exit(f"convert_state: layer {i} has shape {tuple(t.shape)}, layer 0 {shape}")
        shape = tuple(t.shape)
        if not torch.isfinite(t).all():
            sys.exit(f"convert_state: blocks.{i}.att.time_state holds non-finite values")
        # [h][j][i] -> [h][i][j]; contiguous so the bytes are in that order.
        out.append(t.transpose(1, 2).contiguous().numpy().astype("<f4").tobytes())
    return out, shape


def write_state(path, wkv, shape, note):
    n_head, head_size, _ = shape
    kvs = [
        kv_str("general.architecture", "rwkv7"),
        kv_str("general.type", "state"),
        kv_u32("rwkv7.state.version", 1),
        kv_u32("rwkv7.block_count", len(wkv)),
        kv_u32("rwkv7.embedding_length", n_head * head_size),
        kv_u32("rwkv7.wkv.head_size", head_size),
    ]
    if note:
        kvs.append(kv_str("rwkv7.state.note", note))
    infos, offset = [], 0
    for i, data in enumerate(wkv):
        # GGUF lists ne fastest axis first: (N key columns j, N value rows i, H heads).
        infos.append(gguf_str(f"blk.{i}.state_wkv") + struct.pack("<I", 3)
                     + struct.pack("<QQQ", head_size, head_size, n_head)
                     + struct.pack("<I", DTYPE_F32) + struct.pack("<Q", offset))
        offset += len(data) + pad(len(data))
    head = GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(wkv), len(kvs)) + b"".join(kvs) + b"".join(infos)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(head + b"\0" * pad(len(head)))
        for data in wkv:
            f.write(data + b"\0" * pad(len(data)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic, like the runtime's writer


def main():
    ap = argparse.ArgumentParser(description="convert an RWKV-7 initial state (.pth) to an rwkv7 state file")
    ap.add_argument("input", help=".pth (or .safetensors) with blocks.N.att.time_state tensors")
    ap.add_argument("output", help="state file to write (GGUF)")
    ap.add_argument("--note", default=None, help="text stored as rwkv7.state.note (default: the input's name)")
    a = ap.parse_args()
    wkv, shape = load_states(a.input)
    note = a.note if a.note is not None else f"initial state converted from {os.path.basename(a.input)}"
    write_state(a.output, wkv, shape, note)
    n_head, head_size, _ = shape
    print(f"{a.output}: {len(wkv)} layers, {n_head} heads of {head_size} (n_embd {n_head * head_size})")


if __name__ == "__main__":
    main()
