#!/usr/bin/env python3
"""Paired A/B of Google Benchmark binaries on a noisy machine.

    ab.py FILTER ROUNDS BIN_A BIN_B [BIN ...]

Runs every binary ROUNDS times, alternating their order each round, each run with
--benchmark_repetitions=5 --benchmark_min_time=0.1. Noise here only ever slows a run, so per row
it prints each binary's best items/s (and its ratio to BIN_A's best) and its median. Put a row
the change does not touch (a float reference) in FILTER: its ratio is the noise floor.
"""
import collections
import re
import statistics
import subprocess
import sys

UNIT = {'': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9}


def run(binary, filt):
    out = subprocess.run([binary, '--benchmark_filter=' + filt, '--benchmark_min_time=0.1',
                          '--benchmark_repetitions=5'], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r'(\S+)\s.*items_per_second=([0-9.]+)([kMG]?)', line)
        if m and not re.search(r'_(mean|median|stddev|cv)$', m.group(1)):
            yield m.group(1).replace('/real_time', ''), float(m.group(2)) * UNIT[m.group(3)]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    filt, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    res = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in range(rounds):
        for b in (bins if r % 2 == 0 else bins[::-1]):
            for row, v in run(b, filt):
                res[row][b].append(v)
    for row, d in res.items():
        b0 = max(d[bins[0]])
        print(row, ' | '.join('%s best %.4g (x%.3f) median %.4g' % (b, max(d[b]), max(d[b]) / b0, statistics.median(d[b]))
                              for b in bins if d[b]))


if __name__ == '__main__':
    main()
