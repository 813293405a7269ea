#!/bin/bash
# Journey C: moa calib killed (SIGKILL) after its 2nd of 4 answers, re-run; compared with an uninterrupted run
B=/tmp/s32-user-bin; cd /tmp/s32-user-c; rm -f ck-*.jsonl*
C="--lengths 256 --samples 4 --source generated --seed 7"
/usr/bin/time -f "uninterrupted: %e s" $B/moa calib --out ck-ref.jsonl $C > ck-ref.log 2>&1
python3 -c "import signal,os,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])" $B/moa calib --out ck-a.jsonl $C > ck-a1.log 2>&1 & pid=$!
until grep -q "sample 2/4" ck-a1.log 2>/dev/null; do sleep 0.2; done; kill -KILL $pid; wait $pid; echo "killed: exit $?"
ls -l ck-a.jsonl* | awk '{print "  left:", $5, $NF}'
$B/moa calib --out ck-a.jsonl $C > ck-a2.log 2>&1; echo "rerun: exit $?"
tr '\r' '\n' < ck-a2.log | grep -v '^\s*$' | head -8 | sed 's/^/  /'
cmp ck-a.jsonl ck-ref.jsonl && echo "identical to the uninterrupted run"
ls ck-a.jsonl* 
