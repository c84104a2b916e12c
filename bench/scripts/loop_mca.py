#!/usr/bin/env python3
"""Port pressure of a function's compiled loops, by llvm-mca (no PMU needed).

    loop_mca.py BINARY NAME_PART [MCPU]

objdumps BINARY, takes every function whose demangled name contains NAME_PART, and for each
backward conditional branch inside it feeds the straight-line body (target .. branch, other
branches dropped) to llvm-mca -mcpu=MCPU (default icelake-server, the Sapphire Rapids model of
Debian's llvm-14). Prints the block reciprocal throughput and the pressure on ports 0, 1, 5, 6 and
the loads per iteration. Bodies with branches inside mix their paths: read those with care.
"""
import re
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, part = sys.argv[1], sys.argv[2]
    mcpu = sys.argv[3] if len(sys.argv) > 3 else 'icelake-server'
    dump = subprocess.run(['objdump', '-d', '--no-show-raw-insn', '-C', binary], capture_output=True, text=True,
                          check=True).stdout.split('\n')
    funcs, cur = {}, None
    for line in dump:
        m = re.match(r'^([0-9a-f]+) <(.*)>:$', line)
        if m:
            cur = m.group(2) if part in m.group(2) else None
            if cur:
                funcs[cur] = []
            continue
        m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', line)
        if m and cur:
            funcs[cur].append((int(m.group(1), 16), m.group(2).split('#')[0].strip()))
    for name, ins in funcs.items():
        for addr, text in ins:
            m = re.match(r'^(j\w+)\s+([0-9a-f]+) <', text)
            if not m or m.group(1) == 'jmp' or int(m.group(2), 16) >= addr:
                continue
            start = int(m.group(2), 16)
            body = [t for a, t in ins if start <= a < addr and not t.startswith('j')]
            src = '\n'.join(re.sub(r'\s+<[^>]*>', '', t) for t in body) + '\n'
            out = subprocess.run(['llvm-mca', '-mcpu=' + mcpu, '-iterations=100', '-resource-pressure',
                                  '-instruction-info=false'], input=src, capture_output=True, text=True).stdout
            rt = re.search(r'Block RThroughput:\s+([0-9.]+)', out)
            i = out.find('Resource pressure per iteration')
            row = out[i:].split('\n')[2].split() if i >= 0 else []
            ports = ' '.join('%s=%s' % (n, row[k]) for n, k in (('p0', 2), ('p1', 3), ('p5', 7), ('p6', 8), ('load', 4))
                             if k < len(row))
            print('%-50s @%x: %3d insns, block throughput %5s | %s' % (name[:50], start, len(body),
                                                                      rt.group(1) if rt else '?', ports))


if __name__ == '__main__':
    main()
