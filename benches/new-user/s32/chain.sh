#!/bin/bash
# Journey C: the small pipeline stopped at each stage, then resumed; each stop waits for
# a line of the log (the stage's first item), then SIG after DELAY s.
set -m
cd /tmp/s32-user-c; W=chain; P=chain-plans; rm -rf $W $P
stop() { # stop SIG PATTERN DELAY
  python3 -c "import signal,os,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])" ./pipe2.sh $W $P > chain-$1-$4.log 2>&1 & pid=$!
  until grep -q "$2" chain-$1-$4.log 2>/dev/null || ! kill -0 $pid 2>/dev/null; do sleep 0.5; done
  sleep $3; kill -$1 $pid 2>/dev/null; wait $pid; echo "== stop $4: SIG$1 at '$2' + $3 s: exit $?"
  find $W $P -name '*partial*' -o -name '*tmp*' -o -name '*.answers' | sed 's/^/   left: /'
  (cd $W 2>/dev/null && find . -type f | sort | xargs -r ls -l --time-style=+%T | awk '{print "   " $5, $6, $7}')
}
stop INT "answering a 236" 7 1
stop KILL "answering a 490" 4 2
stop KILL "length 256, sample passkey-256-1" 10 3
stop INT "== 5/5 validate" 5 4
stop KILL "\[2/2\] chain" 5 5
./pipe2.sh $W $P > chain-final.log 2>&1; echo "== final run: exit $?"
diff <(grep -v provenance $P/small-50.toml) <(grep -v provenance base2-plans/small-50.toml) && echo "final plan identical to the uninterrupted run's (but provenance)"
