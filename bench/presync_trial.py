#!/usr/bin/env python3
"""The presync trial's two helpers (bench/presync-trial runs them).

  presync_trial.py sample PROBE_PID OUT   while the probe runs: every 2 ms, the state of its
      threads; when one has been blocked (state D) in a write for over 20 ms, its kernel stack,
      the file it writes, and the stacks of every other blocked task on the machine, one JSON
      line per sighting in OUT
  presync_trial.py analyze RAW            per round: the longest write inside the presync window
      (FREEZE request to the first FIFREEZE, the part of each write inside it), the time lost
      (sum of max(0, latency - 5 ms) over the writes overlapping FREEZE request to THAW reply)
      in the window and in the transaction, per filesystem, and the FREEZE reply latency;
      then the maxima and medians per filesystem type, and the blocked stacks seen, by frequency.

Times are CLOCK_MONOTONIC in ms, shared by the simulator, the probe, the shim's trace and this
sampler (time.monotonic)."""
import collections, glob, json, os, statistics, sys, time

LOST_ABOVE_MS = 5.0
REPORT_AFTER_MS = 20.0


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def state(stat):
    # "pid (comm) S ...": comm may hold spaces and parentheses
    return stat[stat.rfind(")") + 2:stat.rfind(")") + 3] if stat else ""


def frames(stack):
    return [line.split("] ", 1)[-1].split("+")[0] for line in stack.splitlines()]


def blocked_elsewhere(probe):
    """Every other task in state D, with its stack: the flusher, jbd2, btrfs, the agent."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == probe:
            continue
        for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
            stat = read(f"/proc/{pid}/task/{tid}/stat")
            if state(stat) == "D":
                comm = stat[stat.find("(") + 1:stat.rfind(")")]
                out.append({"comm": comm, "tid": int(tid), "stack": frames(read(f"/proc/{pid}/task/{tid}/stack"))})
    return out


def sample(probe, out_path):
    since = {}      # tid -> when first seen blocked
    reported = {}   # tid -> when last reported
    with open(out_path, "w") as out:
        while os.path.exists(f"/proc/{probe}/task"):
            now = time.monotonic() * 1e3
            try:
                tids = os.listdir(f"/proc/{probe}/task")
            except OSError:
                break
            for tid in tids:
                if state(read(f"/proc/{probe}/task/{tid}/stat")) != "D":
                    since.pop(tid, None)
                    continue
                start = since.setdefault(tid, now)
                if now - start < REPORT_AFTER_MS or now - reported.get(tid, 0) < 100:
                    continue
                reported[tid] = now
                syscall = read(f"/proc/{probe}/task/{tid}/syscall").split()
                target = ""
                if len(syscall) > 1 and syscall[0] == "1":  # write(fd, ...)
                    try:
                        target = os.readlink(f"/proc/{probe}/fd/{int(syscall[1], 16)}")
                    except (OSError, ValueError):
                        pass
                out.write(json.dumps({"t_ms": now, "blocked_ms": now - start, "tid": int(tid), "file": target,
                                      "stack": frames(read(f"/proc/{probe}/task/{tid}/stack")),
                                      "others": blocked_elsewhere(probe)}) + "\n")
                out.flush()
            time.sleep(0.002)


def timeline(path):
    return [json.loads(line) for line in open(path) if line.startswith("{")]


def fstype(directory):
    return os.path.basename(directory).split("-", 1)[-1]


def round_figures(raw, tag):
    events = timeline(f"{raw}/{tag}.timeline")
    freeze_req = next(e["mono_ms"] for e in events if e["event"] == "request" and e["op"] == "FREEZE")
    freeze_reply = next(e for e in events if e["event"] == "reply" and e["op"] == "FREEZE")
    thaw_done = next(e["mono_ms"] for e in events if e["event"] == "reply" and e["op"] == "THAW")
    first = min((int(ns) / 1e6 for what, ns, _ in (line.split() for line in open(f"{raw}/{tag}.trace"))
                 if what == "freeze-start" and int(ns) / 1e6 >= freeze_req), default=freeze_reply["mono_ms"])
    probe = json.load(open(f"{raw}/{tag}.probe"))
    per_fs = {}
    for fs in probe["filesystems"]:
        window, in_window, lost, lost_window = 0.0, 0, 0.0, 0.0
        for start, lat in fs["slow"]:
            end = start + lat
            if start < thaw_done and end > freeze_req:
                lost += max(0.0, lat - LOST_ABOVE_MS)
            inside = min(end, first) - max(start, freeze_req)
            if inside > 0:
                window = max(window, inside)
                lost_window += max(0.0, inside - LOST_ABOVE_MS)
        per_fs[os.path.basename(fs["dir"])] = {"presync_write_ms": window, "lost_ms": lost,
                                               "presync_lost_ms": lost_window}
    env = json.load(open(f"{raw}/{tag}.env")) if os.path.exists(f"{raw}/{tag}.env") else {}
    return {"tag": tag, "foreign_mib": env.get("foreign_loop_mib", -1), "freeze_reply_ms": freeze_reply["latency_ms"], "presync_ms": first - freeze_req,
            "fs": per_fs}


def analyze(raw):
    rounds = [round_figures(raw, os.path.basename(p)[:-len(".timeline")])
              for p in sorted(glob.glob(f"{raw}/*.timeline"))]
    print(f"{'round':<14} {'other':>6} {'presync':>8} {'FREEZE':>8}  per fs: longest presync write / presync lost / lost (ms)")
    for r in rounds:
        cells = "  ".join(f"{name}: {v['presync_write_ms']:.0f}/{v['presync_lost_ms']:.0f}/{v['lost_ms']:.0f}"
                          for name, v in sorted(r["fs"].items()))
        print(f"{r['tag']:<14} {r['foreign_mib']:6} {r['presync_ms']:8.0f} {r['freeze_reply_ms']:8.0f}  {cells}")
    by_type = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rounds:
        for name, v in r["fs"].items():
            for key, value in v.items():
                by_type[fstype(name)][key].append(value)
    summary = {"rounds": len(rounds),
               "presync_ms": [statistics.median(r["presync_ms"] for r in rounds), max(r["presync_ms"] for r in rounds)],
               "freeze_reply_ms": [statistics.median(r["freeze_reply_ms"] for r in rounds),
                                   max(r["freeze_reply_ms"] for r in rounds)],
               "lost_sum_ms": [statistics.median(sum(v["lost_ms"] for v in r["fs"].values()) for r in rounds),
                               max(sum(v["lost_ms"] for v in r["fs"].values()) for r in rounds)],
               "by_type": {t: {k: [statistics.median(v), max(v)] for k, v in d.items()} for t, d in by_type.items()}}
    print("summary (median, max over rounds):")
    print(f"  presync {summary['presync_ms'][0]:.0f}, {summary['presync_ms'][1]:.0f}  "
          f"FREEZE reply {summary['freeze_reply_ms'][0]:.0f}, {summary['freeze_reply_ms'][1]:.0f}  "
          f"lost (all fs) {summary['lost_sum_ms'][0]:.0f}, {summary['lost_sum_ms'][1]:.0f}")
    for t, d in sorted(summary["by_type"].items()):
        print(f"  {t:<6} longest presync write {d['presync_write_ms'][0]:.0f}, {d['presync_write_ms'][1]:.0f}"
              f"  presync lost {d['presync_lost_ms'][0]:.0f}, {d['presync_lost_ms'][1]:.0f}"
              f"  lost {d['lost_ms'][0]:.0f}, {d['lost_ms'][1]:.0f}")
    json.dump({"rounds": rounds, "summary": summary}, open(f"{raw}/summary.json", "w"), indent=1)
    stacks = collections.Counter()
    for path in glob.glob(f"{raw}/*.stacks"):
        for line in open(path):
            s = json.loads(line)
            stacks[(fstype(os.path.dirname(s["file"])), " < ".join(s["stack"][:8]))] += 1
    if stacks:
        print("probe stacks blocked > 20 ms (sightings):")
        for (t, st), n in stacks.most_common(12):
            print(f"  {n:4} {t}: {st}")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3])
    else:
        analyze(sys.argv[2])
