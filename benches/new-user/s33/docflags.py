# Every --flag a README/docs line gives to `moa <cmd>` / `moa-compile`: is it in that command's --help?
import re, subprocess, sys, glob
M = sys.argv[1]; C = sys.argv[2]
helps = {}
def help_of(cmd):
    if cmd not in helps:
        exe = [C] if cmd == "moa-compile" else [M] + cmd.split()
        helps[cmd] = subprocess.run(exe + ["--help"], capture_output=True, text=True).stdout
    return helps[cmd]
subs = ["plan show", "plan import", "plan export", "model fetch", "model info", "model random", "generate", "bench", "calib", "profile", "optimize", "validate", "pipeline", "eval", "diagnose"]
missing = 0; checked = 0
for f in ["README.md"] + sorted(glob.glob("docs/*.md")):
    lines = open(f).read().split("\n")
    cur = None
    for i, line in enumerate(lines):
        m = re.search(r"\b(moa-compile|moa (?:%s))\b" % "|".join(subs), line)
        if m:
            cur = m.group(1).replace("moa ", "", 1) if m.group(1) != "moa-compile" else "moa-compile"
        elif not line.startswith((" ", "\t")) or line.strip() == "":
            cur = None if not line.startswith(" ") else cur
        if cur is None: continue
        for fl in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", line):
            checked += 1
            if fl not in help_of(cur) and fl not in ("--help",):
                missing += 1; print(f"{f}:{i+1}: `moa {cur}` has no {fl} in --help: {line.strip()[:140]}")
print(f"checked {checked} flag mentions, {missing} not in the command's --help")
