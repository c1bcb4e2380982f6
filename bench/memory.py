#!/usr/bin/env python3
"""Idle memory of one process, as a VM pays it: prints one JSON object.

rss_kib, pss_kib and private_kib (Private_Clean + Private_Dirty) come from /proc/PID/smaps_rollup.
PSS splits every shared page between the processes that map it, so it depends on who else runs:
the benchmark's own processes (the simulator is C++ and maps libstdc++ and libfmt too) would
lower a daemon's PSS below what it pays on a real guest. pss_alone_kib is the PSS recomputed page
by page (/proc/PID/pagemap and /proc/kpagecount, root only) as if the processes under
--exclude-tree (the benchmark's shell and its children, the measured process excepted) did not
exist."""
import argparse, json, os, struct

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1


def smaps_rollup(pid):
    fields = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


def frames(pid):
    """The page frame number of every resident page the process maps (once per mapping)."""
    out = []
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in open(f"/proc/{pid}/maps"):
            if line.rstrip().endswith("[vsyscall]"):
                continue
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            pagemap.seek(start // PAGE * 8)
            data = pagemap.read((end - start) // PAGE * 8)
            for (entry,) in struct.iter_unpack("<Q", data):
                if entry & PRESENT and entry & PFN_MASK:
                    out.append(entry & PFN_MASK)
    return out


def tree(root, keep):
    """root and its descendants, except keep (and keep's descendants)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            parent[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    members = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in members and pid not in members and pid != keep:
                members.add(pid)
                grew = True
    members.discard(keep)
    return members


def pss_alone(pid, excluded):
    others = {}
    for other in excluded:
        try:
            for pfn in frames(other):
                others[pfn] = others.get(pfn, 0) + 1
        except OSError:
            pass  # gone meanwhile: it maps nothing any more
    total = 0.0
    with open("/proc/kpagecount", "rb") as counts:
        for pfn in frames(pid):
            counts.seek(pfn * 8)
            (mapped,) = struct.unpack("<Q", counts.read(8))
            total += PAGE / max(1, mapped - others.get(pfn, 0))
    return total / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--exclude-tree", type=int, required=True, help="the benchmark's shell")
    a = ap.parse_args()
    rollup = smaps_rollup(a.pid)
    print(json.dumps({"rss_kib": rollup["Rss"], "pss_kib": rollup["Pss"],
                      "private_kib": rollup["Private_Clean"] + rollup["Private_Dirty"],
                      "pss_alone_kib": round(pss_alone(a.pid, tree(a.exclude_tree, a.pid)))}))


if __name__ == "__main__":
    main()
