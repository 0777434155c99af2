#!/bin/bash
# batch_preempt.sh: measures the work `rwkv7 batch` loses per preemption. Runs 12 long seeded
# requests once without interruption, then for each kill time K: a run stopped by SIGTERM after K
# seconds and a --resume run, with and without checkpoints (--checkpoint-grace 20 / 0). Prints
# tokens generated before the signal, tokens generated again after it (both runs' totals minus
# the uninterrupted run's), their ratio, and whether every text equals the uninterrupted run's.
# Usage: tools/batch_preempt.sh RWKV7_BINARY MODEL.gguf [KILL_SECONDS...]   (needs python3)
set -euo pipefail
BIN=$1 MODEL=$2
shift 2
if [ $# -eq 0 ]; then KILLS=(4 9 14); else KILLS=("$@"); fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
OPTS=(--backend cpu --parallel 4 --seed 7 --ignore-eos --no-progress)
python3 -c "
import json
for i in range(12):
    print(json.dumps({'custom_id':'r%d'%i,'url':'/v1/completions','body':{'prompt':'Story %d:'%i*(1+i%3),'max_tokens':300+i*20,'stop':['zq','the end']}}))
" > "$DIR/in.jsonl"
gen() { grep -o 'generated [0-9]* tokens' "$1" | grep -o '[0-9]*'; }
"$BIN" batch -m "$MODEL" -i "$DIR/in.jsonl" -o "$DIR/full.out" "${OPTS[@]}" 2> "$DIR/full.err"
FULL=$(gen "$DIR/full.err")
echo "uninterrupted: $FULL tokens"
for k in "${KILLS[@]}"; do
    for grace in 0 20; do
        o="$DIR/m.$grace.$k.out"
        "$BIN" batch -m "$MODEL" -i "$DIR/in.jsonl" -o "$o" "${OPTS[@]}" --checkpoint-grace $grace 2> "$DIR/1.err" &
        pid=$!
        sleep "$k"
        kill -TERM $pid
        wait $pid || true
        "$BIN" batch -m "$MODEL" -i "$DIR/in.jsonl" -o "$o" "${OPTS[@]}" --checkpoint-grace $grace --resume 2> "$DIR/2.err"
        g1=$(gen "$DIR/1.err") g2=$(gen "$DIR/2.err")
        python3 - "$DIR/full.out" "$o" "$g1" "$g2" "$FULL" "$grace" "$k" <<'PY'
import json, sys
def texts(p):
    d = {}
    for l in open(p):
        j = json.loads(l)
        assert j['custom_id'] not in d, 'duplicate ' + j['custom_id']
        d[j['custom_id']] = j['response']['body']['choices'][0]['text']
    return d
a, b = texts(sys.argv[1]), texts(sys.argv[2])
g1, g2, full = map(int, sys.argv[3:6])
r = g1 + g2 - full
print('checkpoint-grace %-2s SIGTERM at %ss: generated before %5d, generated again %5d (%5.1f%%), texts equal: %s'
      % (sys.argv[6], sys.argv[7], g1, r, 100.0 * r / g1, a == b))
PY
        grep -h "terminated" "$DIR/1.err" || true
    done
done
