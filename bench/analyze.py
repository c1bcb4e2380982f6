#!/usr/bin/env python3
"""Turns bench/run's raw data into results.json, results.md and the plots.

Headline: the time applications lose. For each round and filesystem, the probe's writes that
overlap the transaction (FREEZE request to THAW reply) each lose max(0, latency - 5 ms); a
filesystem's lost time is their sum, a round's the sum over filesystems. Above the hold:
sum over filesystems of max(0, lost - hold), the part the daemon is responsible for (the host
asks for the hold; a frozen filesystem cannot lose less). The presync window (FREEZE request to
the daemon's first FIFREEZE) is reported separately, each write clipped to it.

Comparisons are agent/upstream ratios with a percentile-bootstrap 95 % interval (fixed seed):
clean transactions come in interleaved pairs and the median of per-pair ratios is resampled by
pair; rounds are resampled by round (a round holds one transaction of each daemon, in turns
first). A target is met only if its whole interval is. Times are CLOCK_MONOTONIC, shared by the
simulator, the probe and the shim's trace."""
import argparse, glob, json, os, random, re, statistics, subprocess

DAEMONS = ("agent", "upstream")
IDLE_DAEMONS = ("agent", "upstream", "qemu-ga")
SLOW_MS = 5.0           # a write up to this long costs an application nothing it would notice
PRESYNC_TARGET_MS = 100  # no write may be held longer than this by the presync
RESAMPLES = 2000
SEED = 11


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
    """Nearest-rank percentile."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ratio(x, y):
    return x / y if y else float("inf") if x else 1.0


def bootstrap(n, statistic, rng):
    """Percentile bootstrap: statistic(indices) over RESAMPLES resamples of range(n), 95 % interval."""
    values = sorted(statistic([rng.randrange(n) for _ in range(n)]) for _ in range(RESAMPLES))
    return [values[int(0.025 * RESAMPLES)], values[int(0.975 * RESAMPLES) - 1]]


def overlap(start, end, lo, hi):
    return max(0.0, min(end, hi) - max(start, lo))


def lost_round(raw, tag, hold_ms):
    """One transaction under write load: the time the probe lost, per filesystem and in all."""
    events = timeline(f"{raw}/{tag}.timeline")
    freeze_req = request(events, "FREEZE")["mono_ms"]
    thaw_reply = replies(events, "THAW")[0]
    thaw_done = thaw_reply["mono_ms"]
    first = min((t for what, t, _ in trace(f"{raw}/{tag}.trace") if what == "freeze-start" and t >= freeze_req),
                default=freeze_req)
    probe = json.load(open(f"{raw}/{tag}.probe"))
    per_fs, writes = {}, []
    for fs in probe["filesystems"]:
        name = os.path.basename(fs["dir"])
        inside = [(s, lat) for s, lat in fs["slow"] if s < thaw_done and s + lat > freeze_req]
        held = [overlap(s, s + lat, freeze_req, first) for s, lat in inside]
        lost = sum(max(0.0, lat - SLOW_MS) for _, lat in inside)
        per_fs[name] = {"lost_ms": lost, "above_hold_ms": max(0.0, lost - hold_ms),
                        "longest_write_ms": max((lat for _, lat in inside), default=0.0),
                        "presync_lost_ms": sum(max(0.0, h - SLOW_MS) for h in held),
                        "presync_longest_ms": max(held, default=0.0)}
        writes += [(s - freeze_req, lat) for s, lat in fs["slow"] if freeze_req - 500 < s < thaw_done + 500]
    meminfo = {}
    if os.path.exists(f"{raw}/{tag}.meminfo"):
        for line in open(f"{raw}/{tag}.meminfo"):
            key, kib, _ = line.split()
            meminfo[key.rstrip(":")] = int(kib)
    worst_fs = max(per_fs, key=lambda n: per_fs[n]["presync_longest_ms"])
    return {
        "lost_ms": sum(f["lost_ms"] for f in per_fs.values()),
        "above_hold_ms": sum(f["above_hold_ms"] for f in per_fs.values()),
        "presync_window_ms": first - freeze_req,
        "presync_lost_ms": sum(f["presync_lost_ms"] for f in per_fs.values()),
        "presync_longest_ms": per_fs[worst_fs]["presync_longest_ms"],
        "presync_longest_fs": worst_fs,
        "longest_write_ms": max(f["longest_write_ms"] for f in per_fs.values()),
        "freeze_reply_ms": replies(events, "FREEZE")[0]["latency_ms"],
        "thaw_reply_ms": thaw_reply["latency_ms"],
        "dirty_at_start_mib": (meminfo.get("Dirty", 0) + meminfo.get("Writeback", 0)) / 1024,
        "filesystems": per_fs,
        "writes": writes,
    }


ROUND_KEYS = {  # key: row name, in the order of the table; the first two are the headline
    "lost_ms": "time lost by the probe's writes, all filesystems",
    "above_hold_ms": "lost time above the hold",
    "presync_window_ms": "presync window (FREEZE request to first FIFREEZE)",
    "presync_lost_ms": "lost time inside the presync window",
    "presync_longest_ms": "longest write held by the presync",
    "longest_write_ms": "longest single write (secondary)",
    "freeze_reply_ms": "FREEZE reply",
    "thaw_reply_ms": "THAW reply",
}


def load_rounds(raw, hold_ms):
    """{dirty MiB: {daemon: {round: result}}} from the lost-D-DAEMON-R files."""
    out = {}
    for path in glob.glob(f"{raw}/lost-*.timeline"):
        tag = os.path.basename(path)[:-len(".timeline")]
        m = re.fullmatch(r"lost-(\d+)-(agent|upstream)-(\d+)", tag)
        if m:
            out.setdefault(int(m.group(1)), {d: {} for d in DAEMONS})[m.group(2)][int(m.group(3))] = \
                lost_round(raw, tag, hold_ms)
    return out


def compare_rounds(rounds, rng):
    """Median and worst round per daemon, and the ratios with their intervals, resampled by round."""
    numbers = sorted(set(rounds["agent"]) & set(rounds["upstream"]))
    out = {"rounds": numbers}
    for key in ROUND_KEYS:
        a = [rounds["agent"][r][key] for r in numbers]
        u = [rounds["upstream"][r][key] for r in numbers]
        row = {d: {"median": statistics.median(v), "worst": max(v), "best": min(v)} for d, v in
               (("agent", a), ("upstream", u))}
        row["median_ratio"] = ratio(statistics.median(a), statistics.median(u))
        row["median_ratio_ci"] = bootstrap(len(numbers), lambda ix: ratio(statistics.median(a[i] for i in ix),
                                                                           statistics.median(u[i] for i in ix)), rng)
        row["worst_ratio"] = ratio(max(a), max(u))
        row["worst_ratio_ci"] = bootstrap(len(numbers), lambda ix: ratio(max(a[i] for i in ix),
                                                                          max(u[i] for i in ix)), rng)
        out[key] = row
    return out


def pairs(raw, k, rng):
    """Interleaved clean transactions on K filesystems: the i-th of each daemon form pair i."""
    lat = {d: {op: [e["latency_ms"] for e in replies(timeline(f"{raw}/pairs-{d}-{k}.timeline"), op)]
               for op in ("FREEZE", "THAW")} for d in DAEMONS}
    n = min(len(lat["agent"]["FREEZE"]), len(lat["upstream"]["FREEZE"]))
    out = {"pairs": n}
    for op in ("FREEZE", "THAW"):
        a, u = lat["agent"][op][:n], lat["upstream"][op][:n]
        r = [ratio(x, y) for x, y in zip(a, u)]
        out[op] = {"agent_median_ms": statistics.median(a), "upstream_median_ms": statistics.median(u),
                   "agent_p99_ms": pct(a, 99), "upstream_p99_ms": pct(u, 99),
                   "pair_ratio_median": statistics.median(r),
                   "pair_ratio_ci": bootstrap(n, lambda ix: statistics.median(r[i] for i in ix), rng),
                   "p99_ratio": ratio(pct(a, 99), pct(u, 99)),
                   "p99_ratio_ci": bootstrap(n, lambda ix: ratio(pct([a[i] for i in ix], 99),
                                                                  pct([u[i] for i in ix], 99)), rng)}
    return out


def idle(raw):
    out = {}
    for d in IDLE_DAEMONS:
        m = json.load(open(f"{raw}/idle-{d}.idle"))
        row = dict(m["memory"], wakeups=m["wakeups"], wakeups_per_min=m["wakeups"] * 60 / m["window_s"])
        start = next((t for what, t, _ in trace(f"{raw}/idle-{d}.trace") if what == "start"), None)
        path = f"{raw}/idle-{d}.timeline"
        if start is not None and os.path.exists(path):
            registered = next(e for e in timeline(path) if e["event"] == "registered")
            row["startup_to_registered_ms"] = registered["mono_ms"] - start
        out[d] = row
    return out


def ci(v):
    return f"[{v[0]:.3f}, {v[1]:.3f}]"


def targets(res):
    """(target, met, measured): met only if the whole 95 % interval is within the target."""
    out = []
    main = res["lost"].get(str(res["parameters"]["dirty_mib"]))
    if main:
        above = main["compare"]["above_hold_ms"]
        out.append(("lost time above the hold, median round: agent/upstream <= 0.1",
                    above["median_ratio_ci"][1] <= 0.1, f'{above["median_ratio"]:.3f} {ci(above["median_ratio_ci"])}'))
        out.append(("lost time above the hold, worst round: agent/upstream <= 0.2",
                    above["worst_ratio_ci"][1] <= 0.2, f'{above["worst_ratio"]:.3f} {ci(above["worst_ratio_ci"])}'))
    # The presync target holds for every round of the run, the dirty-scaling rounds included.
    for label, sizes in ((f"the {res['parameters']['dirty_mib']} MiB rounds", [str(res["parameters"]["dirty_mib"])]),
                         ("any round, every dirty size", list(res["lost"]))):
        held = [(r["presync_longest_ms"], int(d), int(n), r["presync_longest_fs"])
                for d in sizes if d in res["lost"] for n, r in res["lost"][d]["agent"].items()]
        if held:
            worst = max(held)
            out.append((f"no write held > {PRESYNC_TARGET_MS} ms by the presync in {label} (agent)",
                        worst[0] <= PRESYNC_TARGET_MS,
                        f"longest {worst[0]:.1f} ms ({worst[1]} MiB round {worst[2]}, {worst[3]})"))
    for k, v in res["pairs"].items():
        if int(k) >= 8:
            f = v["FREEZE"]
            out.append((f"clean FREEZE at K={k}: agent/upstream <= 1.0", f["pair_ratio_ci"][1] <= 1.0,
                        f'{f["pair_ratio_median"]:.3f} {ci(f["pair_ratio_ci"])}, {v["pairs"]} pairs'))
    if "4" in res["pairs"]:
        t = res["pairs"]["4"]
        out.append(("THAW p99 at K=4: agent/upstream <= 1.0", t["THAW"]["p99_ratio_ci"][1] <= 1.0,
                    f'{t["THAW"]["p99_ratio"]:.3f} {ci(t["THAW"]["p99_ratio_ci"])}, {t["pairs"]} pairs'))
    i = res["idle"]
    out.append(("idle PSS <= qemu-guest-agent's (without the benchmark's processes)",
                i["agent"]["pss_alone_kib"] <= i["qemu-ga"]["pss_alone_kib"],
                f'{i["agent"]["pss_alone_kib"]} vs {i["qemu-ga"]["pss_alone_kib"]} KiB'))
    out.append(("0 idle wake-ups per minute (agent)", i["agent"]["wakeups"] == 0,
                f'{i["agent"]["wakeups_per_min"]:.1f}/min'))
    return [{"target": n, "met": bool(ok), "measured": m} for n, ok, m in out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    params = json.load(open(f"{a.raw}/params.json"))
    hold_ms = params["hold_s"] * 1000
    rng = random.Random(SEED)
    res = {"parameters": params, "method": {"slow_ms": SLOW_MS, "resamples": RESAMPLES, "seed": SEED},
           "lost": {}, "pairs": {}, "idle": idle(a.raw)}
    rounds = load_rounds(a.raw, hold_ms)
    for d, by_daemon in sorted(rounds.items()):
        entry = {"compare": compare_rounds(by_daemon, rng)}
        for w in DAEMONS:  # every round's figures; the writes only feed the plot
            entry[w] = {n: {key: v for key, v in r.items() if key != "writes"} for n, r in sorted(by_daemon[w].items())}
        res["lost"][str(d)] = entry
    for k in sorted({int(m.group(1)) for p in glob.glob(f"{a.raw}/pairs-agent-*.timeline")
                     if (m := re.search(r"-(\d+)\.timeline$", p))}):
        res["pairs"][str(k)] = pairs(a.raw, k, rng)
    res["targets"] = targets(res)

    os.makedirs(a.out, exist_ok=True)
    json.dump(res, open(f"{a.out}/results.json", "w"), indent=1)
    md = markdown(res)
    open(f"{a.out}/results.md", "w").write(md)
    print(md)
    main_rounds = rounds.get(params["dirty_mib"])
    if main_rounds:
        plot_writes(main_rounds, a.out, hold_ms)
        plot_lost(main_rounds, a.out, params)
    if rounds:
        plot_dirty(res, a.out, params)
    if res["pairs"]:
        plot_clean(res, a.out)


def markdown(res):
    p = res["parameters"]
    L = []
    main = res["lost"].get(str(p["dirty_mib"]))
    if main:
        c = main["compare"]
        L += [f"### Time lost by applications: K={p['k']} filesystems, {p['dirty_mib']} MiB dirty each, "
              f"hold {p['hold_s']} s, {len(c['rounds'])} rounds per daemon", "",
              "Median and worst round per daemon (ms); ratios agent/upstream with their 95 % bootstrap interval.", "",
              "| measure (ms) | agent median | agent worst | upstream median | upstream worst | "
              "ratio of medians [95 % CI] | ratio of worst rounds [95 % CI] |", "|---|---|---|---|---|---|---|"]
        for key, name in ROUND_KEYS.items():
            v = c[key]
            # Upstream has no presync (it freezes at once): a ratio of its presync figures means nothing.
            ratios = ("—", "—") if key.startswith("presync") else (
                f"{v['median_ratio']:.3f} {ci(v['median_ratio_ci'])}", f"{v['worst_ratio']:.3f} {ci(v['worst_ratio_ci'])}")
            L.append(f"| {name} | {v['agent']['median']:.1f} | {v['agent']['worst']:.1f} | "
                     f"{v['upstream']['median']:.1f} | {v['upstream']['worst']:.1f} | {ratios[0]} | {ratios[1]} |")
        L += ["", "Per round (ms; lost / above the hold / longest write held by the presync, and where):", "",
              "| round | first | agent lost | agent above hold | agent presync longest | "
              "upstream lost | upstream above hold |", "|---|---|---|---|---|---|---|"]
        for n in c["rounds"]:
            ag, up = main["agent"][n], main["upstream"][n]
            L.append(f"| {n} | {'agent' if n % 2 else 'upstream'} | {ag['lost_ms']:.1f} | {ag['above_hold_ms']:.1f} | "
                     f"{ag['presync_longest_ms']:.1f} ({ag['presync_longest_fs']}) | {up['lost_ms']:.1f} | "
                     f"{up['above_hold_ms']:.1f} |")
        L += ["", "Per filesystem, median round (ms):", "",
              "| filesystem | agent lost | agent above hold | agent presync longest (worst round) | "
              "upstream lost | upstream above hold |", "|---|---|---|---|---|---|"]
        for fs in next(iter(main["agent"].values()))["filesystems"]:
            col = lambda w, key, f=statistics.median: f(r["filesystems"][fs][key] for r in main[w].values())
            L.append(f"| {fs} | {col('agent', 'lost_ms'):.1f} | {col('agent', 'above_hold_ms'):.1f} | "
                     f"{col('agent', 'presync_longest_ms', max):.1f} | {col('upstream', 'lost_ms'):.1f} | "
                     f"{col('upstream', 'above_hold_ms'):.1f} |")
        L += ["", "![time lost per round](lost.png)", ""]
    if res["lost"]:
        L += [f"### Time lost vs dirty data per filesystem (K={p['k']}, hold {p['hold_s']} s)", "",
              "| dirty MiB per filesystem | rounds | system Dirty+Writeback at start (MiB) | agent above hold, median "
              "(worst) | upstream above hold, median (worst) | ratio of medians [95 % CI] | agent presync longest "
              "write, worst (ms) |", "|---|---|---|---|---|---|---|"]
        for d, v in sorted(res["lost"].items(), key=lambda kv: int(kv[0])):
            c = v["compare"]["above_hold_ms"]
            dirty = statistics.median(r["dirty_at_start_mib"] for w in DAEMONS for r in v[w].values())
            L.append(f"| {d} | {len(v['compare']['rounds'])} | {dirty:.0f} | {c['agent']['median']:.1f} "
                     f"({c['agent']['worst']:.1f}) | {c['upstream']['median']:.1f} ({c['upstream']['worst']:.1f}) | "
                     f"{c['median_ratio']:.3f} {ci(c['median_ratio_ci'])} | "
                     f"{v['compare']['presync_longest_ms']['agent']['worst']:.1f} |")
        L += ["", "![lost time above the hold vs dirty data](dirty.png)", ""]
    if res["pairs"]:
        L += ["### Clean filesystems, interleaved pairs", "",
              "Medians (ms); ratios agent/upstream: median of per-pair ratios, and p99 over p99, each with its "
              "95 % bootstrap interval.", "",
              "| K | pairs | FREEZE agent / upstream | FREEZE pair ratio [95 % CI] | THAW agent / upstream | "
              "THAW pair ratio [95 % CI] | THAW p99 agent / upstream | THAW p99 ratio [95 % CI] |",
              "|---|---|---|---|---|---|---|---|"]
        for k, v in res["pairs"].items():
            f, t = v["FREEZE"], v["THAW"]
            L.append(f"| {k} | {v['pairs']} | {f['agent_median_ms']:.3f} / {f['upstream_median_ms']:.3f} | "
                     f"{f['pair_ratio_median']:.3f} {ci(f['pair_ratio_ci'])} | "
                     f"{t['agent_median_ms']:.3f} / {t['upstream_median_ms']:.3f} | "
                     f"{t['pair_ratio_median']:.3f} {ci(t['pair_ratio_ci'])} | "
                     f"{t['agent_p99_ms']:.3f} / {t['upstream_p99_ms']:.3f} | {t['p99_ratio']:.3f} {ci(t['p99_ratio_ci'])} |")
        L += ["", "![clean FREEZE vs K](clean.png)", ""]
    i = res["idle"]
    row = lambda name, key, fmt="{}": f"| {name} | " + " | ".join(
        fmt.format(i[d][key]) if key in i[d] else "" for d in IDLE_DAEMONS) + " |"
    L += [f"### Idle, connected ({p['idle_s']} s window)", "",
          "| idle | hv-vss-agent | upstream hv_vss_daemon | qemu-guest-agent |", "|---|---|---|---|",
          row("RSS (KiB)", "rss_kib"), row("PSS (KiB)", "pss_kib"),
          row("PSS without the benchmark's processes (KiB)", "pss_alone_kib"),
          row("private: Private_Clean + Private_Dirty (KiB)", "private_kib"),
          row("wake-ups per minute", "wakeups_per_min", "{:.1f}"),
          row("start-up to registered (ms)", "startup_to_registered_ms", "{:.1f}"),
          "", "### Targets", "", "A target with an interval is met only if the whole 95 % interval is.", "",
          "| target | met | measured |", "|---|---|---|"]
    L += [f"| {t['target']} | {'yes' if t['met'] else 'NO'} | {t['measured']} |" for t in res["targets"]]
    return "\n".join(L) + "\n"


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def plot_writes(rounds, out, hold_ms):
    data = f"{out}/stalls.dat"
    with open(data, "w") as f:
        for d in DAEMONS:
            f.write(f"# {d}\n")
            for x, lat in rounds[d][min(rounds[d])]["writes"]:
                f.write(f"{x:.3f} {lat:.3f}\n")
            f.write("\n\n")
    # Each slow write is a horizontal segment from its start to its end, at the height of its
    # latency: the long segments are the write stalls.
    gnuplot(f"""set terminal pngcairo size 1100,500 noenhanced
set output '{out}/stalls.png'
set title 'probe writes slower than 0.2 ms around one snapshot (first round, all filesystems; hold {hold_ms:.0f} ms)'
set xlabel 'time since the FREEZE request (ms)'
set ylabel 'write latency (ms)'
set logscale y
set yrange [0.1:*]
set grid
plot '{data}' index 0 using 1:2:($2):(0) with vectors nohead lw 3 title 'hv-vss-agent', \\
     '{data}' index 1 using 1:2:($2):(0) with vectors nohead lw 3 dt 2 title 'upstream hv_vss_daemon'
""")


def plot_lost(rounds, out, params):
    data = f"{out}/lost.dat"
    with open(data, "w") as f:
        f.write("# round agent_lost agent_above_hold agent_presync_lost upstream_lost upstream_above_hold\n")
        for n in sorted(set(rounds["agent"]) & set(rounds["upstream"])):
            a, u = rounds["agent"][n], rounds["upstream"][n]
            # A log scale cannot show 0: 0.1 ms stands for "nothing lost".
            f.write(" ".join(f"{max(v, 0.1):.3f}" for v in (n, a["lost_ms"], a["above_hold_ms"], a["presync_lost_ms"],
                                                            u["lost_ms"], u["above_hold_ms"])) + "\n")
    gnuplot(f"""set terminal pngcairo size 1000,500 noenhanced
set output '{out}/lost.png'
set title 'time lost by the probe per round (K={params["k"]}, {params["dirty_mib"]} MiB dirty each, hold {params["hold_s"]} s)'
set xlabel 'round'
set ylabel 'ms (0 drawn as 0.1)'
set logscale y
set yrange [0.05:*]
set xtics 1
set grid
set key outside
plot '{data}' using 1:2 with linespoints pt 7 lc 1 title 'agent: lost', \\
     '{data}' using 1:3 with linespoints pt 5 lc 1 dt 2 title 'agent: above the hold', \\
     '{data}' using 1:4 with linespoints pt 1 lc 3 dt 3 title 'agent: inside the presync', \\
     '{data}' using 1:5 with linespoints pt 7 lc 2 title 'upstream: lost', \\
     '{data}' using 1:6 with linespoints pt 5 lc 2 dt 2 title 'upstream: above the hold'
""")


def plot_dirty(res, out, params):
    data = f"{out}/dirty.dat"
    with open(data, "w") as f:
        f.write("# dirty_mib agent_median agent_best agent_worst upstream_median upstream_best upstream_worst\n")
        for d, v in sorted(res["lost"].items(), key=lambda kv: int(kv[0])):
            c = v["compare"]["above_hold_ms"]
            f.write(" ".join(f"{max(x, 0.1):.3f}" for x in (
                int(d), c["agent"]["median"], c["agent"]["best"], c["agent"]["worst"],
                c["upstream"]["median"], c["upstream"]["best"], c["upstream"]["worst"])) + "\n")
    gnuplot(f"""set terminal pngcairo size 900,500 noenhanced
set output '{out}/dirty.png'
set title 'lost time above the hold vs dirty data (K={params["k"]}, hold {params["hold_s"]} s; median, bars best-worst round)'
set xlabel 'dirty data per filesystem (MiB)'
set ylabel 'lost time above the hold (ms, 0 drawn as 0.1)'
set logscale xy
set yrange [0.05:*]
set grid
set key top left
plot '{data}' using 1:2:3:4 with yerrorlines pt 7 title 'hv-vss-agent', \\
     '{data}' using 1:5:6:7 with yerrorlines pt 5 dt 2 title 'upstream hv_vss_daemon'
""")


def plot_clean(res, out):
    data = f"{out}/clean.dat"
    with open(data, "w") as f:
        f.write("# k agent_freeze_median upstream_freeze_median agent_thaw_median upstream_thaw_median\n")
        for k, v in res["pairs"].items():
            f.write(f'{k} {v["FREEZE"]["agent_median_ms"]:.3f} {v["FREEZE"]["upstream_median_ms"]:.3f} '
                    f'{v["THAW"]["agent_median_ms"]:.3f} {v["THAW"]["upstream_median_ms"]:.3f}\n')
    gnuplot(f"""set terminal pngcairo size 900,500 noenhanced
set output '{out}/clean.png'
set title 'clean filesystems: median reply latency vs number of filesystems (interleaved pairs)'
set xlabel 'filesystems (K)'
set ylabel 'ms'
set logscale xy
set grid
set key top left
plot '{data}' using 1:2 with linespoints pt 7 lc 1 title 'FREEZE, hv-vss-agent', \\
     '{data}' using 1:3 with linespoints pt 5 lc 2 title 'FREEZE, upstream hv_vss_daemon', \\
     '{data}' using 1:4 with linespoints pt 7 lc 1 dt 2 title 'THAW, hv-vss-agent', \\
     '{data}' using 1:5 with linespoints pt 5 lc 2 dt 2 title 'THAW, upstream hv_vss_daemon'
""")


if __name__ == "__main__":
    main()
