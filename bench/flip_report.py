#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""bench/flip_report.py RUN_JSON SYN_CSV BINS_CSV: the flip-under-load figures.

RUN_JSON is fwd_bench's output for the run (its "at" list: the flip, then the rollback, each
with the CLOCK_MONOTONIC time its bgctl started and returned); SYN_CSV every SYN the backends
saw (generation time stamped by the generator, arrival time, backend 0-1 blue, 2-3 green);
BINS_CSV packets per backend and kind in 10 ms bins. Prints the summary and writes
flip-events.csv next to BINS_CSV (event, ms since the bins' start) for the plot.

Definitions:
  cutover   first arrival of a SYN on the new color minus the time `bgctl flip` (or
            `rollback`) returned; negative when the switch published before bgctl exited.
            It includes the generator's and the LB's scheduling on a shared machine; the
            switch's own share is the generation time of the first SYN routed to the new
            color (and of the last routed to the old one) relative to bgctl's return.
  misrouted (1) packets of an established flow that reached a backend other than the one
            its first packet reached (fwd_count's per-flow record; no drain ends during the
            run, so every such packet is a misroute); plus new flows (SYNs) that went to
            the color the switch could not have had live when it routed them. The switch
            routed a SYN at some moment between its generation and its arrival at a
            backend (it may wait in the veth's ring for the LB's thread: on a shared machine
            for 100 ms and more), so: (2) generated at or after bgctl flip returned and
            arrived before bgctl rollback started, but on blue; (3) arrived before bgctl
            flip started, or generated at or after bgctl rollback returned, but on green;
            (4) out of order: the LB takes the generator's frames in the order they were
            made (one FIFO ring, one generator CPU), so in generation order the colors must
            read blue..., green..., blue... with one switch per change: the SYNs that break
            that pattern (the fewest whose change would restore it). Any other SYN may have
            been routed while bgctl ran and may go either way, as long as the order holds.
"""
import csv
import gzip
import json
import os
import statistics
import sys

BLUE = {0, 1}
GREEN = {2, 3}


def main():
    run = json.load(open(sys.argv[1]))
    syns = []
    opener = gzip.open if sys.argv[2].endswith(".gz") else open
    with opener(sys.argv[2], "rt") as f:
        for row in csv.DictReader(f):
            syns.append((int(row["gen_ns"]), int(row["arr_ns"]), int(row["backend"])))
    flip, rollback = run["at"][0], run["at"][1]
    t_start = run["t_start_ns"]

    def cutover(since, color):
        arr = [a for g, a, b in syns if b in color and a >= since["start_ns"]]
        return (min(arr) - since["return_ns"]) / 1e6 if arr else None

    def gen_edge(since, new, old):
        first_new = [g for g, a, b in syns if b in new and g >= since["start_ns"] - 10**9]
        last_old = [g for g, a, b in syns if b in old and g < since["return_ns"] + 10**9]
        return ((min(first_new) - since["return_ns"]) / 1e6 if first_new else None,
                (max(last_old) - since["return_ns"]) / 1e6 if last_old else None)

    edge_flip = gen_edge(flip, GREEN, BLUE)
    edge_back = gen_edge(rollback, BLUE, GREEN)
    cut_flip = cutover(flip, GREEN)
    cut_back = cutover(rollback, BLUE)
    mis_flip = sum(1 for g, a, b in syns
                   if g >= flip["return_ns"] and a < rollback["start_ns"] and b in BLUE)
    mis_back = sum(1 for g, a, b in syns if g >= rollback["return_ns"] and b in GREEN)
    mis_before = sum(1 for g, a, b in syns if a < flip["start_ns"] and b in GREEN)
    # (4) fewest SYNs out of the pattern blue* green* blue*, in generation order
    INF = float("inf")
    st = [0, INF, INF]
    for g, a, b in sorted(syns):
        green = b in GREEN
        cost_b, cost_g = (1 if green else 0), (0 if green else 1)
        st = [st[0] + cost_b, min(st[0], st[1]) + cost_g, min(st[1], st[2]) + cost_b]
    mis_order = min(st) if syns else 0
    new_flip = sum(1 for g, a, b in syns if flip["return_ns"] <= g < rollback["start_ns"])
    new_back = sum(1 for g, a, b in syns if g >= rollback["return_ns"])
    in_flip = [b for g, a, b in syns if flip["start_ns"] <= g < flip["return_ns"]]

    # delivered packets per 10 ms bin, all backends
    bins = []
    with open(sys.argv[3]) as f:
        for row in csv.DictReader(f):
            bins.append((int(row["t_ms"]), sum(int(v) for k, v in row.items() if k != "t_ms")))
    t0_ms = (run["t0_ns"] - t_start) / 1e6
    flip_ms = (flip["return_ns"] - t_start) / 1e6
    back_ms = (rollback["return_ns"] - t_start) / 1e6
    steady = [n for t, n in bins if t0_ms <= t < flip_ms - 100]
    med = statistics.median(steady) if steady else 0

    def window(a, b):
        return sum(n for t, n in bins if a <= t < b)

    print(f"bgctl flip took {(flip['return_ns'] - flip['start_ns']) / 1e6:.1f} ms, "
          f"rollback {(rollback['return_ns'] - rollback['start_ns']) / 1e6:.1f} ms")
    print(f"cutover after flip: first new flow on green {cut_flip:.3f} ms after bgctl flip "
          f"returned" if cut_flip is not None else "cutover after flip: no SYN reached green")
    print(f"cutover after rollback: first new flow on blue {cut_back:.3f} ms after bgctl "
          f"rollback returned" if cut_back is not None else "no SYN reached blue after rollback")
    print(f"by generation time, relative to bgctl flip returning: first SYN routed to green "
          f"{edge_flip[0]:.3f} ms, last routed to blue {edge_flip[1]:.3f} ms")
    # the old color gets new flows again after the rollback: only SYNs before it count
    print(f"by generation time, relative to bgctl rollback returning: first SYN routed to blue "
          f"{edge_back[0]:.3f} ms, last routed to green {edge_back[1]:.3f} ms")
    late = sum(1 for g, a, b in syns
               if flip["return_ns"] <= g < rollback["start_ns"] <= a and b in BLUE)
    print(f"new flows while green was live: {new_flip}, misrouted to blue: {mis_flip} "
          f"({late} generated then but routed after the rollback, to blue: in order)")
    print(f"new flows after the rollback: {new_back}, misrouted to green: {mis_back}")
    print(f"new flows that reached a backend before bgctl flip started, on green: {mis_before}")
    print(f"new flows out of the order blue, green, blue (generation order): {mis_order}")
    print(f"new flows generated while bgctl flip ran: {len(in_flip)} "
          f"(blue {sum(1 for b in in_flip if b in BLUE)}, "
          f"green {sum(1 for b in in_flip if b in GREEN)})")
    print(f"established-flow packets on another backend than their first: {run['misrouted']}")
    print(f"SYN records lost: {run['syn_log_lost']}; SYNs logged {run['syn_logged']}, "
          f"counted {run['syn_delivered']} in the measurement")
    for name, t in (("flip", flip_ms), ("rollback", back_ms)):
        before, after = window(t - 500, t), window(t, t + 500)
        print(f"delivered in the 500 ms after the {name} / the 500 ms before: {after} / "
              f"{before} = {after / before if before else 0:.2f} (median 10 ms bin before "
              f"the flip {med:.0f} packets)")
    total = run["misrouted"] + mis_flip + mis_back + mis_before + mis_order
    print(f"misrouted total: {total}")
    with open(os.path.join(os.path.dirname(sys.argv[3]), "flip-events.csv"), "w") as f:
        f.write("event,t_ms\n")
        f.write(f"measure,{t0_ms:.1f}\nflip,{flip_ms:.1f}\nrollback,{back_ms:.1f}\n")
    return 0 if total == 0 and run["syn_log_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
