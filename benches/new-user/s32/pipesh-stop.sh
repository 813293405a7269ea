#!/bin/bash
# Journey C on the README's command: ./scripts/pipeline.sh stopped with SIGINT (as Ctrl-C) after $1 s, twice
cd "/tmp/s32-user clone"; export CARGO_TARGET_DIR=/work/main/target
for run in 1 2; do
  python3 -c "import signal,os,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])" ./scripts/pipeline.sh > /tmp/s32-user-logs/pipeline-sh-run$run.log 2>&1 & pid=$!
  # wait for the moa pipeline process itself (the script execs it), then $1 s
  until grep -q "== 1/5" /tmp/s32-user-logs/pipeline-sh-run$run.log 2>/dev/null; do sleep 1; done
  sleep $1; kill -INT $pid; wait $pid; echo "run $run: SIGINT after $1 s of the pipeline: exit $?"
  ls -la runs/smollm2-135m/ | sed 's/^/   /'
done
