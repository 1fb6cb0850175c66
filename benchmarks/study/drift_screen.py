"""Drift screen (issue 11): a slowly adapting, causal score baseline on top of the shipped
smoothed score, thresholded with the shipped rule (POT 3e-3, floor 10/n) on the adapted
calibration scores. Throw-away study script.

Usage (repo root): nice -n 19 .venv/bin/python benchmarks/study/drift_screen.py [--makerun]

Stream per series: trailing-smoothed calibration parts (in-sample, held-out tail, in order)
then the trailing-smoothed test. Baseline b_t uses only steps < t (EWMA recurrence), b_0 =
median (or mean) of the pooled calibration smoothed scores; the test carries on from the
state at the end of calibration. Adapted trailing score a_t = f(s_t, b_t); the centred test
view at step t is a_{t+lead} (exactly the streamed value, re-attributed as the product does),
the last `lead` steps use the final b.
Forms (scores are NLL, can be negative: c = pooled calibration minimum):
  diff   a = s - b,            b <- b + alpha (u - b)
  ratio  a = (s - c)/(b - c),  b <- b + alpha (u - b)           (b - c clipped at eps)
  log    a = (s - c)/B,        log B <- log B + alpha (log max(u - c, eps) - log B)
u = s (ungated); gate: no update when a_t >= g; clip: u = min(s, value at a = g).
g = the shipped POT threshold on the statically normalised calibration scores (a with b = b_0).
alpha = 1 - 2^(-1/H).
"""
import sys, os, math, collections, time
sys.path.insert(0, os.path.dirname(__file__))
from cal_screen_base import *  # noqa  (also FAMS, SHORT, RISK, th_pot, metrics, HALVES)



# ---- per-series stream pieces
for s in SERIES:
    i = s["i"]
    s["test_tr"] = trailing(S[(i, "test")], s["k"])
    s["lead"] = (s["k"] - 1) // 2
    s["pool"] = np.concatenate(s["parts"])
    fp = s["pool"][np.isfinite(s["pool"])]
    s["c"] = float(fp.min())
    s["med"] = float(np.median(fp)); s["mean"] = float(fp.mean())


def run_baseline(x, form, alpha, b0, c, eps, gate, g):
    """b_before[t] for every step of x (b from steps < t) and the final b. Pure recurrence."""
    out = np.empty(len(x) + 1)
    b = b0 if form != "log" else math.log(max(b0 - c, eps))
    for t, v in enumerate(x.tolist()):
        out[t] = b
        if v != v or alpha == 0.0:  # NaN: no update
            continue
        if form == "diff":
            a = v - b; lim = b + g
        elif form == "ratio":
            d = max(b - c, eps); a = (v - c) / d; lim = c + g * d
        else:
            B = math.exp(b); a = (v - c) / B; lim = c + g * B
        if gate == "gate" and a >= g:
            continue
        if gate == "clip" and v > lim:
            v = lim
        if form == "log":
            b += alpha * (math.log(max(v - c, eps)) - b)
        else:
            b += alpha * (v - b)
    out[len(x)] = b
    return out


def adapt(v, bb, form, c, eps):
    if form == "diff":
        return v - bb
    if form == "ratio":
        return (v - c) / np.maximum(bb - c, eps)
    return (v - c) / np.exp(bb)


def apply_rule(s, form, H, gate, init="med", carry=True, frozen=False):
    c = s["c"]; b0 = s[init]; eps = 1e-3 * max(s["med"] - c, 1e-9)
    alpha = 0.0 if H is None else 1 - 2 ** (-1.0 / H)
    # static normalisation of the calibration scores (b = b_0), for the gate constant g
    b0s = b0 if form != "log" else math.log(max(b0 - c, eps))
    g = th_pot(adapt(s["pool"], b0s, form, c, eps)) if gate != "none" else 0.0
    cal = s["pool"]
    bc = run_baseline(cal, form, 0.0 if frozen else alpha, b0, c, eps, gate, g)
    a_cal = adapt(cal, bc[:-1], form, c, eps)
    if carry and not frozen:
        start = bc[-1] if form != "log" else math.exp(bc[-1]) + c
    else:
        start = b0
    bt = run_baseline(s["test_tr"], form, alpha, start, c, eps, gate, g)
    n = len(s["test"]); lead = s["lead"]
    idx = np.minimum(np.arange(n) + lead, n)  # b index for the centred step (final b at the end)
    a_test = adapt(s["test"], bt[idx], form, c, eps)
    return a_cal, a_test, th_pot(a_cal)




def summarise(M, idx=None):
    idx = list(range(len(SERIES))) if idx is None else idx
    by = collections.defaultdict(list)
    for j in idx:
        by[SERIES[j]["ds"]].append(M[j])
    allv = [M[j] for j in idx]
    f1 = np.mean([m["f1"] for m in allv]); b = np.mean([m["best"] for m in allv])
    fam = {d: (np.mean([m["f1"] for m in v]) / np.mean([m["best"] for m in v]),
               np.mean([m["alarm"] for m in v]) / np.mean([m["lab"] for m in v]),
               np.mean([m["rec"] for m in v]), np.mean([m["ap"] for m in v])) for d, v in by.items()}
    ok = all(0.5 <= fam[d][1] <= 2 for d in fam)
    return dict(f1=f1, best=b, ratio=f1 / b, fam=fam, ok=ok, ap=np.mean([m["ap"] for m in allv]),
                rec=np.mean([m["rec"] for m in allv]))


def ratio_of(M, idx):
    return np.mean([M[j]["f1"] for j in idx]) / np.mean([M[j]["best"] for j in idx])


def main():
    t0 = time.time()
    RULES = collections.OrderedDict()
    RULES["shipped (static)"] = ("shipped", None, None, "none", "med", True, False)
    for form in ("diff", "ratio", "log"):
        for gate in ("none", "gate", "clip"):
            for H in ("4k", "8k", "16k", "32k", 1000, 4000):
                RULES[f"{form} {gate} H={H}"] = (f"{form}/{gate}", form, H, gate, "med", True, False)
    # frozen calibration: b = b_0 on the calibration data (threshold = shipped threshold - b_0), b runs from b_0 on the test
    for gate in ("none", "gate", "clip"):
        for H in ("4k", "8k", "16k", "32k", 1000, 4000):
            RULES[f"diff {gate} H={H} frozen-cal"] = (f"diff/{gate}/frozen", "diff", H, gate, "med", True, True)
    # sanity: H = inf (static b_0) must equal shipped for every form
    RULES["ratio none H=inf (sanity)"] = ("sanity", "ratio", None, "none", "med", True, False)
    # b_0 = mean, and restart at b_0 for the test (no carry), on the diff form
    for gate in ("none", "gate"):
        for H in ("8k", "32k"):
            RULES[f"diff {gate} H={H} b0=mean"] = ("variants", "diff", H, gate, "mean", True, False)
            RULES[f"diff {gate} H={H} restart"] = ("variants", "diff", H, gate, "med", False, False)
    RES = {}; THS = {}
    for name, (fam, form, H, gate, init, carry, frozen) in RULES.items():
        M = []
        for s in SERIES:
            if form is None:
                a_test, th = s["test"], th_pot(s["pool"])
            else:
                Hs = None if H is None else (H if isinstance(H, int) else int(H[:-1]) * s["k"])
                _, a_test, th = apply_rule(s, form, Hs, gate, init, carry, frozen)
            M.append(metrics(a_test, s["lab"], th))
        RES[name] = M
        print(f"# {name}: {time.time() - t0:.0f}s", file=sys.stderr)
    base = RES["shipped (static)"]
    sb = summarise(base); h0 = [summarise(base, h) for h in HALVES]
    L = []
    L.append("# Drift screen: slowly adapting causal score baseline (issue 11)\n")
    L.append("Generated by `benchmarks/study/drift_screen.py` on the study dump (model B, NLL, stride 64, "
             "smoothed over max(period, 64)); threshold = shipped POT 3e-3 (floor 10/n) on the adapted "
             "pooled calibration scores. See the script's docstring for the exact recurrences.\n")
    L.append("Columns: ratio = mean F1@th / mean best F1 (best F1 of the adapted score); F1@th also shown; "
             "half 0 / half 1 = the same ratio on the split halves; W/L = series where F1@th beats / loses "
             "to shipped by > 0.01; AP = mean AUC-PR (average_precision_score); rec = mean recall at the "
             "threshold; family cells = F1 ratio / alarm:labelled.\n")
    head = ("| rule | F1@th | ratio | half 0 | half 1 | W/L | AP | rec | alarm ok | "
            + " | ".join(SHORT[d] for d in FAMS) + " |")
    L.append(head); L.append("| --- |" + " ---: |" * 7 + " :---: |" + " ---: |" * len(FAMS))
    for name, M in RES.items():
        sm = summarise(M); hs = [summarise(M, h) for h in HALVES]
        w = sum(m["f1"] > b["f1"] + 0.01 for m, b in zip(M, base))
        l_ = sum(m["f1"] < b["f1"] - 0.01 for m, b in zip(M, base))
        cells = " | ".join(f"{sm['fam'][d][0]:.2f} / {sm['fam'][d][1]:.1f}" for d in FAMS)
        L.append(f"| {name} | {sm['f1']:.3f} | **{sm['ratio']:.2f}** | {hs[0]['ratio']:.2f} | {hs[1]['ratio']:.2f} | "
                 f"{w}/{l_} | {sm['ap']:.3f} | {sm['rec']:.2f} | {'yes' if sm['ok'] else 'no'} | {cells} |")
    # recall and AP per family for shipped and a few rules
    L.append("\n## Recall at the threshold and AUC-PR per family (shipped vs every rule)\n")
    L.append("| rule | " + " | ".join(f"{SHORT[d]} rec / AP" for d in FAMS) + " |")
    L.append("| --- |" + " ---: |" * len(FAMS))
    for name, M in RES.items():
        sm = summarise(M)
        L.append(f"| {name} | " + " | ".join(f"{sm['fam'][d][2]:.2f} / {sm['fam'][d][3]:.3f}" for d in FAMS) + " |")
    # split-half: choose H within each (form, gate) family on one half, report on the other
    L.append("\n## Split-half: H chosen on one half (alarm in range first, then ratio), reported on the other\n")
    L.append("| rule family | chosen on | pick | ratio on other half (shipped there) | F1@th other (shipped) | alarm in range there |")
    L.append("| --- | ---: | --- | ---: | ---: | :---: |")
    fams = collections.OrderedDict()
    for name, (fam, *_rest) in RULES.items():
        if fam not in ("shipped", "sanity", "variants"):
            fams.setdefault(fam, []).append(name)
    for fam, names in fams.items():
        for a, b in ((0, 1), (1, 0)):
            pick = max(names, key=lambda nm: (summarise(RES[nm], HALVES[a])["ok"], summarise(RES[nm], HALVES[a])["ratio"]))
            o = summarise(RES[pick], HALVES[b])
            L.append(f"| {fam} | half {a} | {pick} | {o['ratio']:.2f} ({h0[b]['ratio']:.2f}) | {o['f1']:.3f} ({h0[b]['f1']:.3f}) | {'yes' if o['ok'] else 'no'} |")
    # per-series detail for the drift series
    L.append("\n## Drift series detail (F1@th / alarm rate / labelled rate)\n")
    show = [n for n in RES if n.startswith(("shipped", "diff none H=8k", "diff gate H=8k", "diff clip H=8k", "ratio none H=8k", "log none H=8k", "diff none H=32k", "diff gate H=32k", "log clip H=8k", "ratio clip H=8k"))]
    L.append("| series | " + " | ".join(show) + " |"); L.append("| --- |" + " ---: |" * len(show))
    for j, s in enumerate(SERIES):
        if s["ds"] in ("nab-realAdExchange", "smd"):
            L.append(f"| {s['name'].split('__')[1]} | " + " | ".join(
                f"{RES[n][j]['f1']:.2f} / {RES[n][j]['alarm']:.3f} / {RES[n][j]['lab']:.3f}" for n in show) + " |")
    # key rules: exact alarm rates and a paired, family-stratified bootstrap of the ratio gain
    L.append("\n## Key rules: exact alarm : labelled, paired gain over shipped (halves, bootstrap)\n")
    L.append("Gain = ratio(rule) - ratio(shipped) on the same series; bootstrap: 2000 resamples of series "
             "with replacement within each family, 95% interval.\n")
    L.append("| rule | gain all | gain half 0 | gain half 1 | bootstrap 95% | AP gain | "
             + " | ".join(f"{SHORT[d]} alarm" for d in FAMS) + " |")
    L.append("| --- |" + " ---: |" * 5 + " ---: |" * len(FAMS))
    rng = np.random.default_rng(0)
    byfam = [np.array([j for j, s in enumerate(SERIES) if s["ds"] == d]) for d in FAMS]
    boots = [np.concatenate([rng.choice(ix, len(ix)) for ix in byfam]) for _ in range(2000)]
    for name in KEY:
        M = RES[name]; sm = summarise(M)
        g = [ratio_of(M, h) - ratio_of(base, h) for h in (range(len(SERIES)), HALVES[0], HALVES[1])]
        bs = np.array([ratio_of(M, b_) - ratio_of(base, b_) for b_ in boots])
        lo, hi = np.quantile(bs, [0.025, 0.975])
        L.append(f"| {name} | {g[0]:+.3f} | {g[1]:+.3f} | {g[2]:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {sm['ap'] - sb['ap']:+.4f} | "
                 + " | ".join(f"{sm['fam'][d][1]:.3f}" for d in FAMS) + " |")
    # where the gain comes from: per family paired F1 change and W/L, and the gain without the drift families
    L.append("\n## Where the gain comes from (per family: mean F1@th change vs shipped, W/L by > 0.01; ratio gain without adEx+SMD)\n")
    L.append("| rule | " + " | ".join(SHORT[d] for d in FAMS) + " | gain w/o adEx, SMD | top 4 series by F1 gain |")
    L.append("| --- |" + " ---: |" * len(FAMS) + " ---: | --- |")
    rest = [j for j, s in enumerate(SERIES) if s["ds"] not in ("nab-realAdExchange", "smd")]
    for name in KEY[1:]:
        M = RES[name]; cells = []
        for d in FAMS:
            ix = [j for j, s in enumerate(SERIES) if s["ds"] == d]
            dd = [M[j]["f1"] - base[j]["f1"] for j in ix]
            cells.append(f"{np.mean(dd):+.3f} ({sum(x > 0.01 for x in dd)}/{sum(x < -0.01 for x in dd)})")
        top = sorted(range(len(SERIES)), key=lambda j: base[j]["f1"] - M[j]["f1"])[:4]
        L.append(f"| {name} | " + " | ".join(cells) + f" | {ratio_of(M, rest) - ratio_of(base, rest):+.3f} | "
                 + ", ".join(f"{SERIES[j]['name'].split('__')[1]} {M[j]['f1'] - base[j]['f1']:+.2f}" for j in top) + " |")
    L.append("\n## NAB tweets detail (F1@th / alarm rate / labelled rate / recall)\n")
    show = ["shipped (static)", "diff none H=8k", "diff none H=32k", "diff gate H=4k", "diff clip H=4k"]
    L.append("| series | " + " | ".join(show) + " |"); L.append("| --- |" + " ---: |" * len(show))
    for j, s in enumerate(SERIES):
        if s["ds"] == "nab-realTweets":
            L.append(f"| {s['name'].split('__')[1]} | " + " | ".join(
                f"{RES[n][j]['f1']:.2f} / {RES[n][j]['alarm']:.3f} / {RES[n][j]['lab']:.3f} / {RES[n][j]['rec']:.2f}" for n in show) + " |")
    txt = "\n".join(L)
    print(txt)
    return RES, txt


# ---------------------------------------------------------------- make run (bundled SMD slice)
def makerun(rules=(("diff", "none", "32k"), ("diff", "none", "8k"), ("diff", "none", "4k"), ("diff", "none", 1000),
                   ("diff", "gate", "4k"), ("diff", "clip", "4k"), ("diff", "clip", "8k"))):
    """Offline `make run`: the shipped model in models/default (trained by make run), its own
    calibration parts (in-sample + held-out tail, split as training does), the test slice
    replayed as 128-row windows every 8 rows through Detector.score with a ScoreHistory
    (the worker's code path, trailing smoothed step scores). A window alarms when its max
    adapted step score exceeds the threshold; b at each step from the backfill trailing score
    of the whole test (causal), continued from the calibration stream."""
    from pathlib import Path
    from modelstore.artifact import load_artifact
    from schemas.series_csv import read_series_csv
    from training.data import masked_values, split_series
    from vaecore.calibration import part_scores
    from vaecore.smoothing import ScoreHistory, SeriesLink
    from worker.replay import expected_window_labels
    det = load_artifact(Path("models/default/1"), device="cpu")
    k = det.smoothing
    tr = read_series_csv(Path("data/sample/smd/machine-1-2/train.csv"))
    te = read_series_csv(Path("data/sample/smd/machine-1-2/test.csv"))
    sp = split_series(masked_values(tr), 0.2, det.window)
    cal_parts = [part_scores(det, [p])[0] for p in (sp.train, sp.val)]
    pool = np.concatenate(cal_parts)
    th0 = th_pot(pool)
    out = [f"\n## `make run` (offline, models/default/1, smoothing k = {k})\n",
           f"Threshold on pooled calibration (shipped rule): {th0:.3f} (manifest: {det.active_thresholds.window:.3f}); "
           f"calibration max {np.nanmax(pool):.3f}; medians: in-sample {np.nanmedian(cal_parts[0]):.2f}, held-out "
           f"{np.nanmedian(cal_parts[1]):.2f}"]
    vals = te.values.astype(np.float64)
    whole = det.score([vals])[0].step  # backfill trailing over the whole test
    lab = te.labels.astype(int)
    out[-1] += f", normal test steps {np.nanmedian(whole[lab == 0]):.2f}.\n"
    hist = ScoreHistory()
    starts = list(range(0, len(vals) - 128 + 1, 8))
    wins = [vals[s:s + 128] for s in starts]
    steps = []
    for a in range(0, len(wins), 32):  # batches in input order, as the worker applies them
        sc = det.score(wins[a:a + 32], [SeriesLink("m", s, s + 128) for s in starts[a:a + 32]], hist)
        steps += [x.step for x in sc]
    truth = expected_window_labels(te, 128, 8).astype(bool)
    out.append("| rule | threshold | window precision | window recall | alarms | test normal steps above th |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")

    def report(name, th, adapted_steps, whole_adapted):
        pred = np.array([np.nanmax(x) > th for x in adapted_steps])
        tp = int((pred & truth).sum())
        out.append(f"| {name} | {th:.3f} | {tp / max(pred.sum(), 1):.2f} ({tp}/{int(pred.sum())}) | "
                   f"{tp / max(truth.sum(), 1):.2f} ({tp}/{int(truth.sum())}) | {int(pred.sum())} | "
                   f"{np.mean(whole_adapted[lab == 0] > th):.3f} |")
    report("shipped (static)", th0, steps, whole)
    s = dict(parts=cal_parts, pool=pool, c=float(np.nanmin(pool)), med=float(np.nanmedian(pool)),
             mean=float(np.nanmean(pool)), k=k)
    for form, gate, H in rules:
        Hs = H if isinstance(H, int) else int(H[:-1]) * k
        c = s["c"]; eps = 1e-3 * max(s["med"] - c, 1e-9); alpha = 1 - 2 ** (-1.0 / Hs)
        g = th_pot(adapt(pool, s["med"], form, c, eps)) if gate != "none" else 0.0
        bc = run_baseline(pool, form, alpha, s["med"], c, eps, gate, g)
        th = th_pot(adapt(pool, bc[:-1], form, c, eps))
        bt = run_baseline(whole, form, alpha, bc[-1], c, eps, gate, g)
        ad = [adapt(x, bt[st:st + 128], form, c, eps) for x, st in zip(steps, starts)]
        report(f"{form} {gate} H={H}", th, ad, adapt(whole, bt[:-1], form, c, eps))
    txt = "\n".join(out)
    print(txt)
    return txt


if __name__ == "__main__" and "--makerun" in sys.argv:
    makerun()


def vus():
    """VUS-PR (TSB-AD via training.vus, data-derived window) for shipped vs the final candidates."""
    os.environ.setdefault("VAEWATCH_PEERS_PYTHON", "benchmarks/.peers-venv/bin/python")
    from training.vus import vus_pr_many
    cands = [("shipped (static)", None), ("diff none H=32k", ("diff", "32k", "none")),
             ("diff none H=8k", ("diff", "8k", "none")), ("diff gate H=4k", ("diff", "4k", "gate"))]
    pairs, data, meta = [], [], []
    for name, r in cands:
        for j, s in enumerate(SERIES):
            if r is None:
                a = s["test"]
            else:
                form, H, gate = r
                _, a, _ = apply_rule(s, form, int(H[:-1]) * s["k"], gate)
            pairs.append((clean(a), s["lab"])); data.append(P[f"te{s['i']}"][:, 0]); meta.append((name, j))
    v = vus_pr_many(pairs, data=data)
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    for (name, j), x in zip(meta, v):
        by[name][SERIES[j]["ds"]].append(x)
    out = ["\n## VUS-PR (TSB-AD, data-derived window), mean over series\n",
           "| rule | overall | " + " | ".join(SHORT[d] for d in FAMS) + " |", "| --- | ---: |" + " ---: |" * len(FAMS)]
    for name, _ in cands:
        allv = [x for d in FAMS for x in by[name][d]]
        out.append(f"| {name} | {np.mean(allv):.3f} | " + " | ".join(f"{np.mean(by[name][d]):.3f}" for d in FAMS) + " |")
    txt = "\n".join(out); print(txt)
    return txt


if __name__ == "__main__" and "--vus" in sys.argv:
    open("/tmp/drift_vus.md", "w").write(vus())


KEY = ["shipped (static)", "diff none H=4k", "diff none H=8k", "diff none H=16k", "diff none H=32k", "diff none H=1000",
       "diff none H=4000", "diff gate H=4k", "diff gate H=8k", "diff clip H=4k", "diff clip H=8k", "diff none H=32k b0=mean",
       "log none H=8k", "ratio none H=4000", "diff none H=4k frozen-cal", "diff none H=8k frozen-cal",
       "diff none H=16k frozen-cal", "diff none H=32k frozen-cal", "diff none H=1000 frozen-cal", "diff none H=4000 frozen-cal",
       "diff gate H=8k frozen-cal", "diff clip H=4k frozen-cal", "diff clip H=8k frozen-cal", "diff clip H=32k frozen-cal"]

if __name__ == "__main__" and "--makerun" not in sys.argv and "--vus" not in sys.argv:
    RES, txt = main()
    if "--with-makerun" in sys.argv:
        txt += "\n" + makerun()
    if "--with-vus" in sys.argv:
        txt += "\n" + vus()
    open("benchmarks/results/drift-screen.md", "w").write(txt + "\n")
