#!/usr/bin/env python3
"""Turns bench/run's raw data into results.json, results.md and stalls.png.

Every figure is reported for both daemons and as the ratio agent/upstream, median over rounds
with the spread (min-max) beside it. Times are CLOCK_MONOTONIC, shared by the simulator, the
probe and the shim's trace, so they can be compared across processes."""
import argparse, glob, json, os, re, statistics, subprocess

DAEMONS = ("agent", "upstream")


def timeline(path):
    events = []
    for line in open(path):
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def trace(path):
    out = []
    if os.path.exists(path):
        for line in open(path):
            what, ns, rc = line.split()
            out.append((what, int(ns) / 1e6, int(rc)))
    return out


def replies(events, op):
    return [e for e in events if e["event"] == "reply" and e["op"] == op]


def request(events, op):
    return next(e for e in events if e["event"] == "request" and e["op"] == op)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def stall_round(raw, tag, hold_ms):
    events = timeline(f"{raw}/{tag}.timeline")
    freeze_req = request(events, "FREEZE")["mono_ms"]
    thaw_reply = replies(events, "THAW")[0]
    thaw_done = thaw_reply["mono_ms"]
    first = min((t for what, t, _ in trace(f"{raw}/{tag}.trace") if what == "freeze-start" and t >= freeze_req),
                default=None)
    probe = json.load(open(f"{raw}/{tag}.probe"))
    stalls = {}
    for fs in probe["filesystems"]:
        overlapping = [lat for start, lat in fs["slow"] if start < thaw_done and start + lat > freeze_req]
        stalls[os.path.basename(fs["dir"])] = max(overlapping, default=0.0)
    worst = max(stalls.values())
    return {
        "freeze_reply_ms": replies(events, "FREEZE")[0]["latency_ms"],
        "thaw_reply_ms": thaw_reply["latency_ms"],
        "to_first_fifreeze_ms": None if first is None else first - freeze_req,
        "stall_ms": stalls,
        "max_stall_ms": worst,
        "excess_stall_ms": worst - hold_ms,
        "writes": [(start - freeze_req, lat, os.path.basename(fs["dir"])) for fs in probe["filesystems"]
                   for start, lat in fs["slow"] if freeze_req - 500 < start < thaw_done + 500],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hold", type=float, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--dirty-mib", type=int, required=True)
    ap.add_argument("--txns", type=int, required=True)
    a = ap.parse_args()
    hold_ms = a.hold * 1000
    res = {"parameters": {"k": a.k, "dirty_mib": a.dirty_mib, "hold_s": a.hold, "txns_at_k4": a.txns},
           "stall": {}, "scale": {}, "idle": {}}

    rounds = {d: [] for d in DAEMONS}
    for path in sorted(glob.glob(f"{a.raw}/stall-*.timeline")):
        tag = os.path.basename(path)[:-len(".timeline")]
        d = tag.split("-")[1]
        rounds[d].append(stall_round(a.raw, tag, hold_ms))
    for d in DAEMONS:
        rs = rounds[d]
        res["stall"][d] = {key: summary([r[key] for r in rs if r[key] is not None]) for key in
                           ("freeze_reply_ms", "thaw_reply_ms", "to_first_fifreeze_ms", "max_stall_ms",
                            "excess_stall_ms")}
        res["stall"][d]["per_filesystem_stall_ms"] = {
            fs: statistics.median(r["stall_ms"][fs] for r in rs) for fs in rs[0]["stall_ms"]}

    scales = sorted({int(m.group(1)) for p in glob.glob(f"{a.raw}/scale-*.timeline")
                     if (m := re.search(r"-(\d+)\.timeline$", p))})
    for k in scales:
        res["scale"][k] = {}
        for d in DAEMONS:
            ev = timeline(f"{a.raw}/scale-{d}-{k}.timeline")
            fr = [e["latency_ms"] for e in replies(ev, "FREEZE")]
            th = [e["latency_ms"] for e in replies(ev, "THAW")]
            res["scale"][k][d] = {"freeze_median_ms": statistics.median(fr), "freeze_p99_ms": pct(fr, 99),
                                  "thaw_median_ms": statistics.median(th), "thaw_p99_ms": pct(th, 99), "n": len(fr)}

    for d in DAEMONS:
        idle = json.load(open(f"{a.raw}/idle-{d}.idle"))
        start = next(t for what, t, _ in trace(f"{a.raw}/idle-{d}.trace") if what == "start")
        registered = next(e for e in timeline(f"{a.raw}/idle-{d}.timeline") if e["event"] == "registered")
        res["idle"][d] = {"rss_kib": idle["rss_kib"], "wakeups_per_min": idle["wakeups"] * 60 / idle["window_s"],
                          "startup_to_ready_ms": registered["mono_ms"] - start}

    ratio = lambda x, y: x / y if y else float("inf")
    s, t = res["stall"], res["scale"]
    k_clean = 8 if 8 in t else scales[len(scales) // 2]
    k_big = scales[-1]
    targets = [
        ("excess stall <= 50 ms", s["agent"]["excess_stall_ms"]["median"] <= 50,
         f'{s["agent"]["excess_stall_ms"]["median"]:.1f} ms'),
        ("excess stall <= 1/10 of upstream", ratio(s["agent"]["excess_stall_ms"]["median"],
                                                   s["upstream"]["excess_stall_ms"]["median"]) <= 0.1,
         f'ratio {ratio(s["agent"]["excess_stall_ms"]["median"], s["upstream"]["excess_stall_ms"]["median"]):.3f}'),
        (f"clean FREEZE reply at K={k_clean} <= 1.5x upstream",
         ratio(t[k_clean]["agent"]["freeze_median_ms"], t[k_clean]["upstream"]["freeze_median_ms"]) <= 1.5,
         f'ratio {ratio(t[k_clean]["agent"]["freeze_median_ms"], t[k_clean]["upstream"]["freeze_median_ms"]):.2f}'),
    ]
    if 4 in t:
        targets.append((f"THAW p99 over {t[4]['agent']['n']} transactions at K=4 <= 1.5x upstream",
                        ratio(t[4]["agent"]["thaw_p99_ms"], t[4]["upstream"]["thaw_p99_ms"]) <= 1.5,
                        f'ratio {ratio(t[4]["agent"]["thaw_p99_ms"], t[4]["upstream"]["thaw_p99_ms"]):.2f}'))
    targets += [
        (f"K={k_big} clean FREEZE reply <= upstream",
         ratio(t[k_big]["agent"]["freeze_median_ms"], t[k_big]["upstream"]["freeze_median_ms"]) <= 1.0,
         f'ratio {ratio(t[k_big]["agent"]["freeze_median_ms"], t[k_big]["upstream"]["freeze_median_ms"]):.2f}'),
        ("idle RSS <= 2x upstream", ratio(res["idle"]["agent"]["rss_kib"], res["idle"]["upstream"]["rss_kib"]) <= 2,
         f'ratio {ratio(res["idle"]["agent"]["rss_kib"], res["idle"]["upstream"]["rss_kib"]):.2f}'),
        ("no periodic idle wakeups", res["idle"]["agent"]["wakeups_per_min"] < 1,
         f'{res["idle"]["agent"]["wakeups_per_min"]:.1f}/min'),
    ]
    res["targets"] = [{"target": n, "met": bool(ok), "measured": m} for n, ok, m in targets]

    os.makedirs(a.out, exist_ok=True)
    json.dump(res, open(f"{a.out}/results.json", "w"), indent=1, default=str)
    md = write_markdown(res, a)
    open(f"{a.out}/results.md", "w").write(md)
    print(md)
    plot(rounds, a.out, hold_ms)


def write_markdown(res, a):
    fmt = lambda v: f'{v["median"]:.2f} ({v["min"]:.2f}-{v["max"]:.2f})'
    L = [f"K={a.k} filesystems, {a.dirty_mib} MiB dirty each, hold {a.hold} s; median (min-max) over "
         f"{res['stall']['agent']['freeze_reply_ms']['n']} rounds per daemon.", "",
         "| measure | hv-vss-agent | upstream hv_vss_daemon | agent/upstream |", "|---|---|---|---|"]
    names = {"freeze_reply_ms": "FREEZE reply (ms)", "thaw_reply_ms": "THAW reply (ms)",
             "to_first_fifreeze_ms": "FREEZE request to first FIFREEZE (ms)", "max_stall_ms": "max write stall (ms)",
             "excess_stall_ms": "excess stall = stall - hold (ms)"}
    for key, name in names.items():
        ag, up = res["stall"]["agent"][key], res["stall"]["upstream"][key]
        L.append(f"| {name} | {fmt(ag)} | {fmt(up)} | {ag['median'] / up['median'] if up['median'] else float('inf'):.3f} |")
    for fs, v in res["stall"]["agent"]["per_filesystem_stall_ms"].items():
        u = res["stall"]["upstream"]["per_filesystem_stall_ms"][fs]
        L.append(f"| write stall on {fs} (ms, median) | {v:.1f} | {u:.1f} | {v / u if u else float('inf'):.3f} |")
    L += ["", "Clean filesystems (no write load):", "",
          "| K | FREEZE median agent / upstream (ms) | ratio | THAW p99 agent / upstream (ms) | ratio | transactions |",
          "|---|---|---|---|---|---|"]
    for k, v in res["scale"].items():
        ag, up = v["agent"], v["upstream"]
        L.append(f"| {k} | {ag['freeze_median_ms']:.3f} / {up['freeze_median_ms']:.3f} | "
                 f"{ag['freeze_median_ms'] / up['freeze_median_ms']:.2f} | {ag['thaw_p99_ms']:.3f} / {up['thaw_p99_ms']:.3f} | "
                 f"{ag['thaw_p99_ms'] / up['thaw_p99_ms']:.2f} | {ag['n']} |")
    ia, iu = res["idle"]["agent"], res["idle"]["upstream"]
    L += ["", "| idle | hv-vss-agent | upstream | ratio |", "|---|---|---|---|",
          f"| RSS (KiB) | {ia['rss_kib']} | {iu['rss_kib']} | {ia['rss_kib'] / iu['rss_kib']:.2f} |",
          f"| wakeups per minute | {ia['wakeups_per_min']:.1f} | {iu['wakeups_per_min']:.1f} | |",
          f"| start-up to registered (ms) | {ia['startup_to_ready_ms']:.1f} | {iu['startup_to_ready_ms']:.1f} | "
          f"{ia['startup_to_ready_ms'] / iu['startup_to_ready_ms']:.2f} |",
          "", "| target | met | measured |", "|---|---|---|"]
    L += [f"| {t['target']} | {'yes' if t['met'] else 'NO'} | {t['measured']} |" for t in res["targets"]]
    return "\n".join(L) + "\n"


def plot(rounds, out, hold_ms):
    data = f"{out}/stalls.dat"
    with open(data, "w") as f:
        for d in DAEMONS:
            f.write(f"# {d}\n")
            for x, lat, _ in rounds[d][0]["writes"]:
                f.write(f"{x:.3f} {lat:.3f}\n")
            f.write("\n\n")
    # Each slow write is a horizontal segment from its start to its end, at the height of its
    # latency: the long segments are the write stalls.
    script = f"""set terminal pngcairo size 1100,500 noenhanced
set output '{out}/stalls.png'
set title 'probe writes slower than 0.2 ms around one snapshot (first round, all filesystems; hold {hold_ms:.0f} ms)'
set xlabel 'time since the FREEZE request (ms)'
set ylabel 'write latency (ms)'
set logscale y
set grid
plot '{data}' index 0 using 1:2:($2):(0) with vectors nohead lw 3 title 'hv-vss-agent', \\
     '{data}' index 1 using 1:2:($2):(0) with vectors nohead lw 3 dt 2 title 'upstream hv_vss_daemon'
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


if __name__ == "__main__":
    main()
