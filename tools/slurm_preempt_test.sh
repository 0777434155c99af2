#!/bin/bash
# slurm_preempt_test.sh: the preemption recipe of docs/batch.md on a real single-node Slurm.
# Starts munged, slurmctld and slurmd (Debian's slurm-wlm and munge; configured here, loopback
# only, state in a temporary folder), submits the 4-task array job over the given test model,
# cancels task 1 mid-run (scancel: SIGTERM, then SIGKILL after KillWait), resubmits it, merges
# the outputs with the documented recipe and checks: every request exactly once, every text equal
# to an unsharded uninterrupted run's, tokens generated again after the cancel under 2% of those
# generated before it. Run as root on a machine without another Slurm:
#   apt-get install slurm-wlm munge
#   tools/slurm_preempt_test.sh build/rwkv7 tests/data/tiny-rwkv7-834K/tiny-rwkv7-834K-Q8_0.gguf
# Exit 0 when every check passes.
set -euo pipefail
BIN=$(readlink -f "$1") MODEL=$(readlink -f "$2")
CANCEL_AFTER=${CANCEL_AFTER:-6}
# EXTRA="--checkpoint-grace 0" shows the work lost without checkpoints (the 2% check then fails).
EXTRA=${EXTRA:-}
for c in munged slurmctld slurmd sbatch squeue scancel; do
    command -v $c > /dev/null || { echo "slurm_preempt_test: $c not found (apt-get install slurm-wlm munge)"; exit 77; }
done
DIR=$(mktemp -d /tmp/rwkv7_slurm_XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 1
    echo "slurm_preempt_test: files in $DIR"
}
trap cleanup EXIT

# munge: a fresh key and socket in DIR.
mkdir -p "$DIR/munge"
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$DIR/munge" 2> /dev/null || true
chmod 700 "$DIR/munge"
chmod 400 "$DIR/munge/munge.key"
MSOCK="$DIR/munge/munge.socket"
munged --force --key-file="$DIR/munge/munge.key" --socket="$MSOCK" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/seed"
PIDS+=("$(cat "$DIR/munge/munged.pid")")

HOST=$(hostname -s)
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/work"
cat > "$DIR/slurm.conf" << CONF
ClusterName=rwkv7test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$MSOCK
CryptoType=crypto/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
slurmctld -D -f "$SLURM_CONF" > "$DIR/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" > "$DIR/slurmd.out" 2>&1 &
PIDS+=($!)
for i in $(seq 60); do
    sinfo -h -o %t 2> /dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "slurm_preempt_test: the node did not come up"; tail -5 "$DIR"/*.log; exit 1; }

# 24 long seeded requests; the array job of docs/batch.md with N=4.
cd "$DIR/work"
python3 -c "
import json
for i in range(24):
    print(json.dumps({'custom_id':'q%d'%i,'url':'/v1/completions','body':{'prompt':'Tale %d. Once upon a time'%i,'max_tokens':150+10*i}}))
" > requests.jsonl
cat > job.sh << JOB
#!/bin/bash
#SBATCH --job-name=rwkv7-batch
#SBATCH --array=0-3
#SBATCH --cpus-per-task=1
#SBATCH --requeue
#SBATCH --signal=TERM@60
#SBATCH --output=slurm-%A_%a.out
N=4
I=\$SLURM_ARRAY_TASK_ID
exec "$BIN" batch -m "$MODEL" --backend cpu -t 1 --no-progress --ignore-eos \\
    -i requests.jsonl -o out.\$I.jsonl --shard \$I/\$N --seed 42 --resume $EXTRA
JOB
"$BIN" batch -m "$MODEL" --backend cpu --no-progress --ignore-eos -i requests.jsonl -o reference.jsonl --seed 42 2> reference.err

wait_done() { while [ -n "$(squeue -h -j "$1" 2> /dev/null)" ]; do sleep 1; done; }
JOB=$(sbatch --parsable job.sh)
# Wait until task 1 runs, give it CANCEL_AFTER seconds, then cancel it like a preemption.
for i in $(seq 120); do
    [ "$(squeue -h -j "${JOB}_1" -o %T 2> /dev/null)" = RUNNING ] && break
    sleep 1
done
sleep "$CANCEL_AFTER"
scancel "${JOB}_1"
wait_done "$JOB"
cp "slurm-${JOB}_1.out" first_run_1.err
JOB2=$(sbatch --parsable --array=1 job.sh)
wait_done "$JOB2"
cat "slurm-${JOB2}_1.out" > second_run_1.err

# The merge recipe of docs/batch.md.
cat out.*.jsonl | sed 's/^{"id":"batch_req_\([0-9]*\)"/\1\t&/' | sort -n -k1,1 | cut -f2- > results.jsonl
python3 - << 'PY'
import json, re, sys
def recs(p):
    d = {}
    for l in open(p):
        j = json.loads(l)
        d.setdefault(j['custom_id'], []).append(j)
    return d
ref, got = recs('reference.jsonl'), recs('results.jsonl')
ok = True
for k in ref:
    if len(got.get(k, [])) != 1:
        print('request %s: %d records' % (k, len(got.get(k, [])))); ok = False
    elif got[k][0]['response']['body']['choices'][0]['text'] != ref[k][0]['response']['body']['choices'][0]['text']:
        print('request %s: text differs from the unsharded run' % k); ok = False
if set(got) - set(ref):
    print('unexpected records:', sorted(set(got) - set(ref))); ok = False
def gen(p):
    m = re.findall(r'generated (\d+) tokens', open(p).read())
    return int(m[-1]) if m else 0
shard1 = sum(r[0]['response']['body']['usage']['completion_tokens'] for k, r in ref.items() if int(r[0]['id'][10:]) % 4 == 1)
before, after = gen('first_run_1.err'), gen('second_run_1.err')
again = before + after - shard1
print('task 1: generated %d tokens before the cancel, %d after the resubmit; shard total %d; generated again %d (%.2f%%)'
      % (before, after, shard1, again, 100.0 * again / max(before, 1)))
print(open('first_run_1.err').read().strip().splitlines()[-1])
if before == 0 or again > 0.02 * before:
    print('FAIL: work lost over 2%'); ok = False
print('PASS' if ok else 'FAIL')
sys.exit(0 if ok else 1)
PY
