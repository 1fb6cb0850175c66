"""Smoothing screen (issue 11, fourth screen): other temporal kernels than the shipped centred
rolling mean over k = max(period, 64), on the study dump (model B, NLL, stride 64).
Throw-away study script.

Usage (repo root): nice -n 5 .venv/bin/python benchmarks/study/smoothing_screen.py

Each rule maps a raw step score x (NaN = missing) to a causal (trailing) smoothed score; the
test is scored in its centred view (the trailing value shifted back by the rule's lead, as
the product does), the calibration parts in the trailing view; threshold = shipped POT 3e-3
(floor 10/n) on the pooled calibration scores. Multi-scale rules standardise each scale by
the pooled calibration scores of that scale (median, IQR) and take the max.
"""
import sys, os, collections, time
sys.path.insert(0, os.path.dirname(__file__))
from cal_screen_base import *  # noqa  (also FAMS, SHORT, RISK, th_pot, metrics, HALVES)



def shift_centred(tr, lead):
    """Centred view of a trailing series: value at t = trailing value at t + lead."""
    return np.concatenate([tr[lead:], np.full(lead, np.nan)])[: len(tr)] if lead else tr


def roll_median(x, k):
    out = np.full(len(x), np.nan)
    from numpy.lib.stride_tricks import sliding_window_view
    pad = np.concatenate([np.full(k - 1, np.nan), x])
    win = sliding_window_view(pad, k)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = np.nanmedian(win, axis=1)
    return out


def box(x, k):
    return trailing(x, k)


def tri(x, k):
    h = max(k // 2, 1)
    return trailing(trailing(x, h), h)


def ewma_pair(x, k):
    return trailing(x, k)


def tri_exact(x, k):
    """Box of width h = k // 2 applied twice (k is the total span): triangle of 2h - 1 steps."""
    h = max(k // 2, 1)
    return trailing(trailing(x, h), h)


def gauss3(x, k):
    h = max(k // 3, 1)
    return trailing(trailing(trailing(x, h), h), h)


KERNELS = {
    # name: (trailing function of (x, k), lead for a k)
    "box": (box, lambda k: (k - 1) // 2),
    "tri": (tri, lambda k: 2 * ((max(k // 2, 1) - 1) // 2)),
    "median": (roll_median, lambda k: (k - 1) // 2),
    "tri_exact": (tri_exact, lambda k: max(k // 2, 1) - 1),
    "gauss3": (gauss3, lambda k: 3 * (max(k // 3, 1) - 1) // 2),
}


def single(s, kern, mult=1.0, pre=None):
    f, lead = KERNELS[kern]
    k = max(int(round(s["k"] * mult)), 2)
    parts = [S[(s["i"], p)] for p in ("train", "val") if (s["i"], p) in S]
    test_raw = S[(s["i"], "test")]
    if pre is not None:
        parts, test_raw = pre(s, parts, test_raw)
    cal = np.concatenate([f(p, k) for p in parts])
    test = shift_centred(f(test_raw, k), lead(k))
    return cal, test


def robust_z(cal, test):
    c = cal[np.isfinite(cal)]
    med = np.median(c); iqr = max(np.subtract(*np.percentile(c, [75, 25])), 1e-9)
    return (cal - med) / iqr, (test - med) / iqr


def multiscale_mixed(s, specs):
    cals, tests = [], []
    for kern, m in specs:
        cal, test = single(s, kern, m)
        zc, zt = robust_z(cal, test)
        cals.append(zc); tests.append(zt)
    with np.errstate(all="ignore"):
        return np.fmax.reduce(cals), np.fmax.reduce(tests)


def multiscale(s, kern, scales, comb=None):
    cals, tests = [], []
    for m in scales:
        if isinstance(m, str):  # absolute k
            k = int(m)
            f, lead = KERNELS[kern]
            parts = [S[(s["i"], p)] for p in ("train", "val") if (s["i"], p) in S]
            cal = np.concatenate([f(p, k) for p in parts])
            test = shift_centred(f(S[(s["i"], "test")], k), lead(k))
        else:
            cal, test = single(s, kern, m)
        zc, zt = robust_z(cal, test)
        cals.append(zc); tests.append(zt)
    if comb is not None:
        return comb(np.stack(cals), axis=0), comb(np.stack(tests), axis=0)
    with np.errstate(all="ignore"):
        return np.fmax.reduce(cals), np.fmax.reduce(tests)


def clip_pre(q, mult):
    def pre(s, parts, test_raw):
        pool = np.concatenate(parts); pool = pool[np.isfinite(pool)]
        med = np.median(pool); cap = med + mult * (np.quantile(pool, q) - med)
        return [np.minimum(p, cap) for p in parts], np.minimum(test_raw, cap)
    return pre


def log_pre(s, parts, test_raw):
    pool = np.concatenate(parts); pool = pool[np.isfinite(pool)]
    c = pool.min(); sc = max(np.median(pool) - c, 1e-6)
    g = lambda x: np.log1p(np.maximum(x - c, 0) / sc)
    return [g(p) for p in parts], g(test_raw)




def fam_means(M, idx):
    by = collections.defaultdict(list)
    for j in idx:
        by[SERIES[j]["ds"]].append(M[j])
    return by


def row(name, M, base):
    idx = list(range(len(SERIES)))
    by = fam_means(M, idx)
    ap = np.mean([m["ap"] for m in M]); f1 = np.mean([m["f1"] for m in M]); b = np.mean([m["best"] for m in M])
    hs = []
    for h in HALVES:
        hs.append(np.mean([M[j]["ap"] for j in h]))
    w = sum(m["ap"] > bb["ap"] + 0.01 for m, bb in zip(M, base))
    l_ = sum(m["ap"] < bb["ap"] - 0.01 for m, bb in zip(M, base))
    cells = " | ".join(f"{np.mean([m['ap'] for m in by[d]]):.3f}" for d in FAMS)
    al = " | ".join(f"{np.mean([m['alarm'] for m in by[d]]) / np.mean([m['lab'] for m in by[d]]):.1f}" for d in FAMS)
    return (f"| {name} | **{ap:.3f}** | {hs[0]:.3f} | {hs[1]:.3f} | {w}/{l_} | {cells} | {b:.3f} | {f1 / b:.2f} | {al} |")


def main():
    t0 = time.time()
    R = collections.OrderedDict()
    R["box k (shipped)"] = lambda s: single(s, "box")
    for m in (0.5, 2.0):
        R[f"box {m}k"] = (lambda m: lambda s: single(s, "box", m))(m)
    R["tri k"] = lambda s: single(s, "tri")
    R["tri 1.5k"] = lambda s: single(s, "tri", 1.5)
    R["tri 2k"] = lambda s: single(s, "tri", 2.0)
    R["median k"] = lambda s: single(s, "median")
    R["box k, log-compressed raw"] = lambda s: single(s, "box", 1.0, log_pre)
    R["box k, raw clipped at med+3(q99.9-med)"] = lambda s: single(s, "box", 1.0, clip_pre(0.999, 3))
    R["box k, raw clipped at med+1(q99.9-med)"] = lambda s: single(s, "box", 1.0, clip_pre(0.999, 1))
    R["max z(box k, box k/4)"] = lambda s: multiscale(s, "box", (1.0, 0.25))
    R["max z(box k, box 16)"] = lambda s: multiscale(s, "box", (1.0, "16"))
    R["max z(box k, box 2k)"] = lambda s: multiscale(s, "box", (1.0, 2.0))
    R["max z(box k/2, box k, box 2k)"] = lambda s: multiscale(s, "box", (0.5, 1.0, 2.0))
    R["tri_exact 2k (box k twice)"] = lambda s: single(s, "tri_exact", 2.0)
    R["tri_exact 3k"] = lambda s: single(s, "tri_exact", 3.0)
    R["gauss3 2k"] = lambda s: single(s, "gauss3", 2.0)
    R["gauss3 3k"] = lambda s: single(s, "gauss3", 3.0)
    R["max z(box k/2, box 2k)"] = lambda s: multiscale(s, "box", (0.5, 2.0))
    R["max z(box k/4, k/2, k, 2k)"] = lambda s: multiscale(s, "box", (0.25, 0.5, 1.0, 2.0))
    R["max z(box k/2, k, 2k, 4k)"] = lambda s: multiscale(s, "box", (0.5, 1.0, 2.0, 4.0))
    R["max z(tri k, tri 2k, tri 4k)"] = lambda s: multiscale(s, "tri_exact", (1.0, 2.0, 4.0))
    R["max z(box k, tri 2k)"] = lambda s: multiscale_mixed(s, (("box", 1.0), ("tri_exact", 2.0)))
    R["max z(box k/2, box k, tri 2k)"] = lambda s: multiscale_mixed(s, (("box", 0.5), ("box", 1.0), ("tri_exact", 2.0)))
    R["mean z(box k/2, box k, box 2k)"] = lambda s: multiscale(s, "box", (0.5, 1.0, 2.0), np.mean)
    R["max z(tri k, tri 2k)"] = lambda s: multiscale(s, "tri_exact", (1.0, 2.0))
    R["max z(tri k/2, k, 2k, 4k)"] = lambda s: multiscale(s, "tri_exact", (0.5, 1.0, 2.0, 4.0))
    R["max z(tri k/2, k, 2k)"] = lambda s: multiscale(s, "tri_exact", (0.5, 1.0, 2.0))
    RES = {}
    for name, fn in R.items():
        M = []
        for s in SERIES:
            cal, test = fn(s)
            M.append(metrics(test, s["lab"], th_pot(cal)))
        RES[name] = M
        print(f"# {name}: {time.time() - t0:.0f}s", file=sys.stderr)
    base = RES["box k (shipped)"]
    L = ["# Smoothing screen (issue 11, fourth screen)\n",
         "Generated by `benchmarks/study/smoothing_screen.py` on the study dump (model B, NLL, stride 64). "
         "k = max(median period over channels, 64). AP = mean AUC-PR over 51 series (half 0 / half 1 = "
         "alternate series of each family); W/L = series with AP up / down by > 0.01 vs shipped; family "
         "columns = mean AP; best F1 = oracle; ratio = mean F1 at the shipped POT rule / mean best F1; "
         "last columns = alarm : labelled rate per family.\n",
         "| rule | AP | half 0 | half 1 | W/L | " + " | ".join(SHORT[d] for d in FAMS) + " | best F1 | ratio | "
         + " | ".join(f"{SHORT[d]} al" for d in FAMS) + " |",
         "| --- |" + " ---: |" * (4 + len(FAMS) + 2 + len(FAMS))]
    for name, M in RES.items():
        L.append(row(name, M, base))
    out = "\n".join(L) + "\n"
    print(out)
    open("benchmarks/results/smoothing-screen.md", "w").write(out)


if __name__ == "__main__":
    main()
