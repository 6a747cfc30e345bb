#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgctl's option tables against what documents them: the bash completion and bgctl(8)'s
# GLOBAL OPTIONS and VERBS lines must list exactly the options each verb's table has (no
# option missing, none that does not exist), and the completion must know which options
# take a value. The tables come from the binary itself (`bgctl __options`), so a new option
# added to a verb without its completion or man line fails here. Needs no state and no root.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ -x "$BGCTL" ] || skip "no bgctl at $BGCTL (build first)"
command -v python3 >/dev/null || skip "no python3"
tables=$("$BGCTL" __options) || fail "bgctl __options failed"
[ -n "$tables" ] || fail "bgctl __options printed nothing"

BGCTL_TABLES=$tables python3 - "$BGS_ROOT/scripts/bgctl.bash-completion" "$BGS_ROOT/docs/bgctl.8" \
	<<'PY' || exit 1
import os, re, sys

comp = open(sys.argv[1]).read()
man = open(sys.argv[2]).read()
tables = os.environ["BGCTL_TABLES"]

verbs = {}      # "service add" -> {"--vip": True (takes a value)}
order = []
for line in tables.splitlines():
    verb, _, opts = line.partition("\t")
    d = verbs.setdefault(verb, {})
    if verb not in order:
        order.append(verb)
    for o in opts.split():
        d[o.rstrip("=")] = o.endswith("=")
glob = verbs.pop("global")
order.remove("global")
top = {}        # "service" -> union of its sub-verbs' options
for v, d in verbs.items():
    top.setdefault(v.split()[0], {}).update(d)
errors = []

def diff(what, have, want):
    for o in sorted(set(want) - set(have)):
        errors.append(f"{what} misses {o}")
    for o in sorted(set(have) - set(want)):
        errors.append(f"{what} lists {o}, which bgctl does not have")

# ---- bash completion ----
m = re.search(r'local verbs="([^"]*)"', comp)
diff("completion's verb list", m.group(1).split() if m else [], top)
m = re.search(r'local global="([^"]*)"', comp)
diff("completion's global options", m.group(1).split() if m else [], glob)
m = re.search(r'local opts="([^"]*)"', comp)
diff("completion's options after a verb", m.group(1).split() if m else [],
     [o for o in glob if o != "--version"])
case = re.search(r'case "\$verb" in\n(.*?)\n\tesac', comp, re.S)
have = {}
for line in (case.group(1).splitlines() if case else []):
    m = re.match(r'\s*([a-z]+)\) opts\+=" ([^"]*)"', line)
    if m:
        have[m.group(1)] = m.group(2).split()
for v in sorted(set(top) | set(have)):
    if v not in top:
        errors.append(f"completion has options for verb {v}, which bgctl does not have")
        continue
    diff(f"completion of 'bgctl {v}'", have.get(v, []), top[v])
# options that take a value must be in the "$prev" case (else their value completes as a verb)
prev = re.search(r'case "\$prev" in\n(.*?)\n\tesac', comp, re.S)
prev_opts = set(re.findall(r'(--[a-z-]+)', prev.group(1) if prev else ""))
allopts = dict(glob)
for d in verbs.values():
    allopts.update(d)
for o, val in sorted(allopts.items()):
    if val and o not in prev_opts:
        errors.append(f"completion does not know that {o} takes a value")
    if not val and o in prev_opts:
        errors.append(f"completion takes a value after {o}, a flag")
for o in sorted(prev_opts - set(allopts)):
    errors.append(f"completion's value case lists {o}, which bgctl does not have")

# ---- bgctl(8) ----
def opts_of(text):
    return set(o.replace("\\", "") for o in re.findall(r'\\-\\-(?:[a-z]|\\-)+', text))
def section(name):
    m = re.search(r'^\.SH ' + name + r'\n(.*?)(?=^\.SH )', man, re.S | re.M)
    return m.group(1) if m else ""
heads = re.findall(r'^\.TP\n(.*)$', section("GLOBAL OPTIONS"), re.M)
diff("bgctl(8) GLOBAL OPTIONS", set().union(*map(opts_of, heads)) if heads else set(), glob)
mv = {}
for head in re.findall(r'^\.TP\n\.B (.*)$', section("VERBS"), re.M):
    words = re.sub(r'\\f[BIR]', '', head).split()
    v = " ".join(words[:2]) if words[0] in ("service", "backend", "rollout") else words[0]
    mv.setdefault(v, set()).update(opts_of(head))
for v in order:
    if v not in mv:
        errors.append(f"bgctl(8) has no VERBS line for 'bgctl {v}'")
for v in sorted(mv):
    if v not in verbs:
        errors.append(f"bgctl(8) documents 'bgctl {v}', which bgctl does not have")
        continue
    diff(f"bgctl(8) line of 'bgctl {v}'", mv[v], verbs[v])

for e in errors:
    print("FAIL:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"ok - {len(order)} synopses, {len(allopts)} options checked against the completion "
      f"and bgctl(8)")
PY
