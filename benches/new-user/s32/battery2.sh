export XDG_RUNTIME_DIR=/tmp/xdg-s32-user
B=/tmp/s32-user-bin
cd /tmp/s32-user-w
./run1.sh generate $B/moa generate --plan PLAN --prompt hi --max-new-tokens 2 > res/generate.txt 2>&1
./run1.sh validate $B/moa validate --calib calib.jsonl --plan PLAN > res/validate.txt 2>&1
./run1.sh diagnose $B/moa diagnose --calib calib.jsonl --plan PLAN > res/diagnose.txt 2>&1
rm -rf prof2; ./run1.sh underplan $B/moa profile --calib calib.jsonl --lengths 256 -o prof2 --under-plan PLAN > res/underplan.txt 2>&1
./run1.sh near $B/moa optimize --profile prof/influence_256.safetensors --density 0.5 -o opt --near PLAN --max-changes 2 > res/near.txt 2>&1
./run1.sh shape $B/moa optimize --profile prof/influence_256.safetensors --density 0.5 -o opt --plan-shape PLAN > res/shape.txt 2>&1
./run1.sh eval $B/moa eval --plan PLAN --lengths 256 --depths 1 --ppl-rows 0 --tasks passkey > res/eval.txt 2>&1
./run1.sh bench $B/moa bench --plan PLAN > res/bench.txt 2>&1
./run1.sh pipeline $B/moa pipeline --workdir /tmp/s32-user-w/pw --plans-dir /tmp/s32-user-w/pplans --source generated --near PLAN --max-changes 2 > res/pipeline.txt 2>&1
echo done > res/battery2.done
