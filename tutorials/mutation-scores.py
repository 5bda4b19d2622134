#!/usr/bin/env python3
"""The mutation score per step from PIT's reports, tutorials/target/pit-reports/*/mutations.csv (mutation-test.sh
writes them): killed (or timed out) mutants over all mutants of each lesson package. An equivalent mutant (a change
that cannot alter any result, such as > turned into >= where both branches give the same value) counts as a
survivor, as PIT counts it. --survivors lists the survivors: the lines no test protects yet."""
import csv
import glob
import os
import sys
from collections import defaultdict

reports = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target", "pit-reports")
files = sorted(glob.glob(os.path.join(reports, "*", "mutations.csv")))
if not files:
    sys.exit(f"no PIT reports under {reports}: run bash tutorials/mutation-test.sh")
total, killed, survivors = defaultdict(int), defaultdict(int), defaultdict(list)
for name in files:
    with open(name, newline="") as f:
        for row in csv.reader(f):
            source, cls, mutator, method, line, status = row[:6]
            step = cls.split(".")[3]
            total[step] += 1
            if status in ("KILLED", "TIMED_OUT", "MEMORY_ERROR"):
                killed[step] += 1
            else:
                survivors[step].append(f"{status:11} {source}:{line} {method}  {mutator.rsplit('.', 1)[-1]}")
print(f"{'step':8} {'mutants':>8} {'killed':>8} {'score':>6}")
for step in sorted(total):
    print(f"{step:8} {total[step]:8} {killed[step]:8} {100 * killed[step] / total[step]:5.0f}%")
    if "--survivors" in sys.argv:
        for s in survivors[step]:
            print("    " + s)
all_total, all_killed = sum(total.values()), sum(killed.values())
print(f"{'all':8} {all_total:8} {all_killed:8} {100 * all_killed / all_total:5.0f}%")
