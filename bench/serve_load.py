#!/usr/bin/env python3
"""serve_load.py: N concurrent streaming completions against a running `rwkv7 serve`, the same
requests as tests/test_serve_load.c (prompt "Request i: ...", seed i, temperature 0.8,
ignore_eos). Prints aggregate generated tokens/s, mean and max time to the first event (first token), and writes the
matching `rwkv7 batch` input file so both commands can run the same requests. Standard library
only; loopback by default.

    python3 bench/serve_load.py --port 8080 -n 64 --max-tokens 64 [--batch-input in.jsonl]
"""
import argparse, http.client, json, threading, time


def body(i, max_tokens, stream):
    return {"prompt": f"Request {i}: tell me a story about the number {i}.", "max_tokens": max_tokens,
            "temperature": 0.8, "seed": i, "ignore_eos": True, "stream": stream}


def one(host, port, i, max_tokens, out):
    t0 = time.monotonic()
    c = http.client.HTTPConnection(host, port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(body(i, max_tokens, True)), {"Content-Type": "application/json"})
    r = c.getresponse()
    ttft, tokens = None, 0
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        if ttft is None and b"data: " in buf:
            ttft = time.monotonic() - t0
    for ev in buf.split(b"\n\n"):
        if ev.startswith(b"data: {"):
            u = json.loads(ev[6:]).get("usage")
            if u:
                tokens = u["completion_tokens"]
    out[i] = (ttft or 0, tokens, buf.endswith(b"data: [DONE]\n\n"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-input", help="also write these requests as a rwkv7 batch input file")
    a = ap.parse_args()
    if a.batch_input:
        with open(a.batch_input, "w") as f:
            for i in range(a.n):
                b = body(i, a.max_tokens, False)
                del b["stream"]
                f.write(json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/completions", "body": b}) + "\n")
    out = {}
    threads = [threading.Thread(target=one, args=(a.host, a.port, i, a.max_tokens, out)) for i in range(a.n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    tokens = sum(v[1] for v in out.values())
    ok = sum(1 for v in out.values() if v[2] and v[1] == a.max_tokens)
    ttfts = [v[0] for v in out.values()]
    print(f"{a.n} streams: {ok}/{a.n} complete, {tokens} tokens in {dt:.2f} s = {tokens / dt:.1f} generated tok/s; "
          f"time to first token mean {1e3 * sum(ttfts) / len(ttfts):.0f} ms, max {1e3 * max(ttfts):.0f} ms")


if __name__ == "__main__":
    main()
