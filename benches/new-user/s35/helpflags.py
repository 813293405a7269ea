# The other direction of tests/docs_contract.rs: every flag each command's --help lists,
# looked up in README.md's CLI block (that command's entry) and anywhere in docs/*.md.
# Usage: python3 helpflags.py REPO MOA MOA_COMPILE; prints the flags no doc names.
import re, subprocess, sys, glob, os
repo, moa, mc = sys.argv[1:4]
readme = open(os.path.join(repo, "README.md")).read()
docs = "".join(open(p).read() for p in glob.glob(os.path.join(repo, "docs", "*.md")))
cli = readme.split("## CLI", 1)[1].split("\n## ", 1)[0]
def flags(cmd):
    h = subprocess.run(cmd + ["--help"], capture_output=True, text=True).stdout
    return [f for f in re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", h, re.M) if f not in ("--help", "--version")]
def entry(words):
    # the README CLI block's paragraph(s) for this command: from its usage line to the next usage line
    name = " ".join(words)
    out, on = [], False
    for line in cli.splitlines():
        if re.match(r"^(moa|moa-compile)\b", line):
            on = line.startswith(name + " ") or line == name or (line.startswith(name) and name == "moa-compile")
            if not on and name.startswith("moa model") and line.startswith("moa model fetch | info"):
                on = words[-1] in ("fetch", "info")
        if on:
            out.append(line)
    return "\n".join(out)
cmds = [["moa", w] for w in "generate optimize calib profile validate pipeline eval diagnose bench".split()]
cmds += [["moa", "plan", w] for w in "import export show".split()]
cmds += [["moa", "model", w] for w in "fetch info random".split()]
total = missing_readme = missing_all = 0
for c in cmds + [["moa-compile"]]:
    exe = [mc] if c == ["moa-compile"] else [moa] + c[1:]
    e = entry(c)
    for f in flags(exe):
        total += 1
        in_entry = re.search(re.escape(f) + r"\b", e) is not None
        in_docs = re.search(re.escape(f) + r"\b", docs) is not None or re.search(re.escape(f) + r"\b", readme) is not None
        if not in_entry:
            missing_readme += 1
            print(f"{' '.join(c)} {f}: not in README's CLI entry" + ("" if in_docs else "; in no doc at all"))
            if not in_docs:
                missing_all += 1
print(f"{total} flags; {missing_readme} not in their README entry; {missing_all} in no doc")
