"""Channel-aggregation screen (issue 11, SMD): how the per-point scores (T, C) become one raw
step score before the rolling mean. Throw-away study script.

Usage (repo root): nice -n 10 .venv/bin/python benchmarks/study/channel_screen.py
                   [--dump .qdata/chan_study.npz] [--smoother mean|multiscale]
                   [--vus RULE ...] [--md RULE ...] [--kprime [RULE ...]] [--json OUT]
Reads the dump of `channel_dump.py`. Per series and rule: raw_step (T,) for every calibration
part and test; trailing mean over k (`vaecore.smoothing.trailing`) on each calibration part,
centred (`centred`) on test; threshold = `vaecore.calibration.threshold(pooled finite
calibration scores, 3e-3, "pot")` (the shipped rule). Per-channel statistics come from the
pooled calibration point scores only (in-sample train parts + held-out tail), never test.

Rules (p_c = point score of channel c at a step; missing channels are skipped; a step with
no observed channel is NaN):
  mean          mean over observed channels (shipped)
  max           max over channels
  top{n}, topC/4  mean of the n largest (n = 2, 3, 5; ceil(C/4)); fewer if fewer observed
  z_mean/z_max/z_top3   z_c = (p_c - median_c) / max(IQR_c, eps), then mean / max / top-3 mean;
                eps = 1e-3 * median over channels of IQR_c (absolute floor 1e-9)
  zf_mean/zf_top3  (not in the brief, added after z's first result) the same with the scale
                floored at the median over channels of IQR_c: are SMD's near-constant channels
                (IQR ~ 0) what z loses on? zf{M}_*: the floor at M x that median (sensitivity).
  u_mean/u_top3 u_c = -log S_c(p_c), S_c(p) = (1 + #{cal_c >= p}) / (n_c + 1): the conformal
                tail probability of the calibration ECDF, clipped at 1/(n_c+1) (u <= log(n_c+1));
                then mean / top-3 mean
  RULE@K'       the same rule with the smoothing window K' (16, 32) instead of the series' k
                (--kprime: for these rules; default mean, the best 3 of max..u_top3 on SMD
                AUC-PR, zf_mean, zf_top3; `--kprime` alone: none)
--md RULE ...   markdown tables (family means, halves, won/lost vs mean) of these rules
--smoother multiscale: the same rules under the working tree's multiscale smoother (two
                standardised triangular kernels of k/2 and k boxes, the larger; see
                `multiscale`) instead of the one rolling mean: the sanity lines then differ.
--vus RULE ...  VUS-PR (TSB-AD's code in benchmarks/.peers-venv, window from the series'
                first channel, as benchmarks/quality.py) for `mean` and the rules named.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from training.metrics import auc_pr, best_f1, f1_at  # noqa: E402
from vaecore.calibration import threshold  # noqa: E402
from vaecore.smoothing import centred, trailing  # noqa: E402
from vaecore.unscored import below_all, ranked  # noqa: E402

RISK = 3e-3
FLOOR_MULTIPLIERS = (0.1, 0.25, 0.5, 2.0, 4.0)  # sensitivity of zf's floor (x median IQR)
FAMILY = {"smd": "SMD", "skab-valve1": "SKAB"}
warnings.simplefilter("ignore", RuntimeWarning)


# ---- data -------------------------------------------------------------------------
def load(path: Path) -> list[dict]:
    z = np.load(path)
    out = []
    for i, name in enumerate(z["names"]):
        n_cal = int(z[f"{i}/n_cal"])
        ds, series = str(name).split("__")
        out.append({
            "name": str(name), "ds": ds, "series": series, "fam": FAMILY[ds],
            "cal": [z[f"{i}/cal_{j}"].astype(np.float64) for j in range(n_cal)],
            "test": z[f"{i}/test"].astype(np.float64),
            "labels": z[f"{i}/labels"].astype(int),
            "k": int(z[f"{i}/k"]), "shipped_threshold": float(z[f"{i}/threshold"]),
            "first": z[f"{i}/first_channel"].astype(np.float64),
        })
    return out


def channel_stats(cal: list[np.ndarray]) -> dict:
    pooled = np.concatenate(cal)  # (N, C)
    med = np.nanmedian(pooled, axis=0)
    q75, q25 = np.nanquantile(pooled, [0.75, 0.25], axis=0)
    iqr = q75 - q25
    good = iqr[np.isfinite(iqr) & (iqr > 0)]
    eps = max(1e-3 * float(np.median(good)) if good.size else 1.0, 1e-9)
    srt = [np.sort(col[np.isfinite(col)]) for col in pooled.T]
    floor = float(np.median(good)) if good.size else 1.0
    iqr = np.nan_to_num(iqr, nan=1.0)
    out = {"med": med, "scale": np.maximum(iqr, eps), "scale_floor": np.maximum(iqr, floor),
           "sorted": srt}
    for m in FLOOR_MULTIPLIERS:
        out[f"scale_floor{m:g}"] = np.maximum(iqr, m * floor)
    return out


# ---- per-channel transforms and aggregations ---------------------------------------
def z_transform(p: np.ndarray, st: dict, scale: str = "scale") -> np.ndarray:
    return (p - st["med"]) / st[scale]


def u_transform(p: np.ndarray, st: dict) -> np.ndarray:
    out = np.full_like(p, np.nan)
    for c, srt in enumerate(st["sorted"]):
        n = len(srt)
        if n == 0:
            continue  # never observed in calibration: no statistics, treated as missing
        col = p[:, c]
        ok = np.isfinite(col)
        at_least = n - np.searchsorted(srt, col[ok], side="left")  # #{cal >= p}
        out[ok, c] = -np.log((1.0 + at_least) / (n + 1.0))
    return out


def agg_mean(p: np.ndarray) -> np.ndarray:
    counts = np.isfinite(p).sum(axis=1)
    return np.where(counts > 0, np.nansum(p, axis=1) / np.maximum(counts, 1), np.nan)


def agg_max(p: np.ndarray) -> np.ndarray:
    counts = np.isfinite(p).sum(axis=1)
    return np.where(counts > 0, np.nanmax(np.where(np.isfinite(p), p, -np.inf), axis=1), np.nan)


def agg_top(p: np.ndarray, n: int) -> np.ndarray:
    finite = np.isfinite(p)
    counts = finite.sum(axis=1)
    desc = -np.sort(-np.where(finite, p, -np.inf), axis=1)[:, :n]  # n largest, -inf last
    take = np.minimum(counts, n)
    total = np.where(np.isfinite(desc), desc, 0.0).sum(axis=1)
    return np.where(counts > 0, total / np.maximum(take, 1), np.nan)


def make_rules(n_channels: int) -> dict:
    quarter = math.ceil(n_channels / 4)
    rules = {
        "mean": lambda p, st: agg_mean(p),
        "max": lambda p, st: agg_max(p),
    }
    for n in (2, 3, 5):
        rules[f"top{n}"] = (lambda n: lambda p, st: agg_top(p, n))(n)
    rules["topC/4"] = lambda p, st: agg_top(p, quarter)
    rules["z_mean"] = lambda p, st: agg_mean(z_transform(p, st))
    rules["z_max"] = lambda p, st: agg_max(z_transform(p, st))
    rules["z_top3"] = lambda p, st: agg_top(z_transform(p, st), 3)
    rules["zf_mean"] = lambda p, st: agg_mean(z_transform(p, st, "scale_floor"))
    rules["zf_top3"] = lambda p, st: agg_top(z_transform(p, st, "scale_floor"), 3)
    for m in FLOOR_MULTIPLIERS:
        key = f"scale_floor{m:g}"
        rules[f"zf{m:g}_mean"] = (lambda key: lambda p, st: agg_mean(z_transform(p, st, key)))(key)
        rules[f"zf{m:g}_top3"] = (lambda key: lambda p, st: agg_top(z_transform(p, st, key), 3))(key)
    rules["u_mean"] = lambda p, st: agg_mean(u_transform(p, st))
    rules["u_top3"] = lambda p, st: agg_top(u_transform(p, st), 3)
    return rules


BASE_RULES = ["mean", "max", "top2", "top3", "top5", "topC/4", "z_mean", "z_max", "z_top3",
              "u_mean", "u_top3", "zf_mean", "zf_top3"]


# ---- one rule on one series ----------------------------------------------------------
SMOOTHER = "mean"  # --smoother: "mean" (commit 9f8add3) or "multiscale" (the working tree's)


def multiscale(cal_raw: list[np.ndarray], k: int):
    """The working tree's multiscale smoother (uncommitted at the time of this screen): two
    triangular kernels (box k//2 and k, two passes), each standardised by the median and
    IQR of its trailing smoothed calibration scores, the larger taken."""
    from dataclasses import replace

    from vaecore.calibration import robust_spread
    from vaecore.smoothing import MAX_SPAN, Scale, Smoother

    scales = []
    for scale in (Scale(max(k // 2, 1), 2), Scale(min(k, (MAX_SPAN + 1) // 2), 2)):
        values = np.concatenate([scale.smooth(r) for r in cal_raw])
        finite = values[np.isfinite(values)]
        center = float(np.median(finite)) if finite.size else 0.0
        scales.append(replace(scale, center=center, spread=robust_spread(values)))
    return Smoother(tuple(scales))


def steps_for(s: dict, st: dict, rule: str, k_override: int | None = None) -> dict:
    fn = make_rules(s["test"].shape[1])[rule]
    k = k_override or s["k"]
    if SMOOTHER == "multiscale":
        cal_raw = [fn(part, st) for part in s["cal"]]
        smoother = multiscale(cal_raw, k)
        cal = np.concatenate([smoother.trailing(r) for r in cal_raw])
        thr = threshold(cal[np.isfinite(cal)], RISK, "pot")
        step = smoother.centred(fn(s["test"], st))
        return {"step": step, "threshold": thr, "flags": below_all(step) > thr}
    cal = np.concatenate([trailing(fn(part, st), k) for part in s["cal"]])
    thr = threshold(cal[np.isfinite(cal)], RISK, "pot")
    step = centred(fn(s["test"], st), k)
    return {"step": step, "threshold": thr, "flags": below_all(step) > thr}


def metrics(res: dict, labels: np.ndarray) -> dict:
    alarm, lab = float(np.mean(res["flags"])), float(np.mean(labels))
    return {
        "auc_pr": auc_pr(res["step"], labels),
        "best_f1": best_f1(res["step"], labels),
        "f1_thr": f1_at(res["flags"], labels),
        "alarm": alarm, "labelled": lab, "alarm_ratio": alarm / lab,
        "threshold": float(res["threshold"]),
    }


# ---- tables ------------------------------------------------------------------------------
def halves(series: list[dict]) -> dict[str, list[str]]:
    """Per family, series sorted by name, alternately into halves A and B."""
    out: dict[str, list[str]] = {}
    for fam in ("SMD", "SKAB"):
        names = sorted(s["name"] for s in series if s["fam"] == fam)
        out[f"{fam}-A"], out[f"{fam}-B"] = names[0::2], names[1::2]
    return out


def fam_mean(rows: dict[str, dict], names: list[str], key: str) -> float:
    if key == "alarm/lab":  # ratio of the family means (as quality.json's summary gives it)
        return fam_mean(rows, names, "alarm") / fam_mean(rows, names, "labelled")
    median = key.endswith("~")
    key = key.rstrip("~")
    vals = [rows[n][key] for n in names if rows[n].get(key) is not None]
    if not vals:
        return float("nan")
    return float(np.median(vals) if median else np.mean(vals))


def markdown(results: dict, split: dict, fams: dict, rules: list[str]) -> str:
    rules = ["mean", *[r for r in rules if r != "mean"]]
    keys = [("auc_pr", "AUC-PR"), ("vus_pr", "VUS-PR"), ("f1_thr", "F1 at thr"),
            ("best_f1", "best F1"), ("alarm/lab", "alarm/lab")]
    lines = []
    groups = {"SMD": fams["SMD"], "SMD-A": split["SMD-A"], "SMD-B": split["SMD-B"],
              "SKAB": fams["SKAB"], "SKAB-A": split["SKAB-A"], "SKAB-B": split["SKAB-B"]}
    for key, title in keys:
        if not any(key == "alarm/lab" or results[r][n].get(key) is not None
                   for r in rules if r in results for n in results[r]):
            continue
        lines.append(f"\n{title} (family mean{'s: mean alarm rate / mean labelled rate' if key == 'alarm/lab' else ''})\n")
        lines.append("| rule | " + " | ".join(groups) + " | SMD w/l | SKAB w/l |")
        lines.append("|---" * (len(groups) + 3) + "|")
        for r in rules:
            if r not in results or (key != "alarm/lab" and all(
                    results[r][n].get(key) is None for n in results[r])):
                continue
            cells = [f"{fam_mean(results[r], names, key):.3f}" for names in groups.values()]
            wl = []
            for g in ("SMD", "SKAB"):
                if key == "alarm/lab":
                    wl.append("")
                    continue
                d = [results[r][n].get(key) for n in fams[g]]
                b = [results["mean"][n].get(key) for n in fams[g]]
                d = [x - y for x, y in zip(d, b) if x is not None and y is not None]
                wl.append(f"{sum(x > 1e-4 for x in d)}/{sum(x < -1e-4 for x in d)}")
            lines.append(f"| {r} | " + " | ".join(cells + wl) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=str(REPO / ".qdata" / "chan_study.npz"))
    ap.add_argument("--vus", nargs="*", default=None)
    ap.add_argument("--json", default=str(REPO / ".qdata" / "chan_screen.json"))
    ap.add_argument("--smoother", default="mean", choices=["mean", "multiscale"])
    ap.add_argument("--md", nargs="*", default=None, help="markdown tables of these rules")
    ap.add_argument("--kprime", nargs="*", default=None,
                    help="rules to rerun with k' = 16, 32 (default: mean + best 3 by SMD AUC-PR)")
    args = ap.parse_args()
    global SMOOTHER
    SMOOTHER = args.smoother
    series = load(Path(args.dump))
    stats = {s["name"]: channel_stats(s["cal"]) for s in series}
    split = halves(series)
    fams = {"SMD": split["SMD-A"] + split["SMD-B"], "SKAB": split["SKAB-A"] + split["SKAB-B"]}

    # sanity: rule `mean` reproduces the shipped threshold
    print("sanity (rule mean): threshold recomputed vs shipped")
    for s in series:
        r = steps_for(s, stats[s["name"]], "mean")
        print(f"  {s['name']:24s} k={s['k']:4d} thr={r['threshold']:.5f} "
              f"shipped={s['shipped_threshold']:.5f}")

    results: dict[str, dict[str, dict]] = {}  # rule -> name -> metrics
    cache: dict[tuple[str, str], dict] = {}

    def run(rule: str, kp: int | None = None) -> None:
        label = rule if kp is None else f"{rule}@{kp}"
        results[label] = {}
        for s in series:
            r = steps_for(s, stats[s["name"]], rule, kp)
            cache[(label, s["name"])] = r
            results[label][s["name"]] = metrics(r, s["labels"])

    for rule in BASE_RULES:
        run(rule)
    for m in FLOOR_MULTIPLIERS:  # sensitivity of the zf floor
        run(f"zf{m:g}_mean")
        run(f"zf{m:g}_top3")
    ranked_rules = sorted(BASE_RULES[1:-2], key=lambda r: -fam_mean(results[r], fams["SMD"], "auc_pr"))
    kprime = args.kprime if args.kprime is not None else ["mean", *ranked_rules[:3], "zf_mean", "zf_top3"]
    for rule in kprime:
        for kp in (16, 32):
            run(rule, kp)

    def table(title: str, keys: list[str]) -> None:
        print(f"\n{title}")
        head = f"{'rule':14s}" + "".join(f"{g + ' ' + k:>15s}" for g in ("SMD", "SKAB") for k in keys)
        print(head)
        for label in results:
            row = f"{label:14s}"
            for g in ("SMD", "SKAB"):
                for k in keys:
                    row += f"{fam_mean(results[label], fams[g], k):15.3f}"
            print(row)

    table("per family means: AUC-PR, best F1, F1 at threshold, mean alarm rate / mean labelled"
          " rate, median over series of alarm/labelled",
          ["auc_pr", "best_f1", "f1_thr", "alarm/lab", "alarm_ratio~"])

    print("\nhalves (AUC-PR; F1 at threshold) and series won/lost vs mean on AUC-PR")
    print(f"{'rule':14s}" + "".join(f"{h:>16s}" for h in split) + f"{'SMD w/l':>9s}{'SKAB w/l':>10s}")
    for label in results:
        row = f"{label:14s}"
        for h, names in split.items():
            row += f"{fam_mean(results[label], names, 'auc_pr'):8.3f};{fam_mean(results[label], names, 'f1_thr'):.3f}"
        for g in ("SMD", "SKAB"):
            d = [results[label][n]["auc_pr"] - results["mean"][n]["auc_pr"] for n in fams[g]]
            row += f"{sum(x > 1e-4 for x in d):>5d}/{sum(x < -1e-4 for x in d)}"
        print(row)

    print("\nper series AUC-PR (SMD)")
    smd = fams["SMD"]
    print(f"{'rule':14s}" + "".join(f"{n.split('__')[1]:>11s}" for n in smd))
    for label in results:
        print(f"{label:14s}" + "".join(f"{results[label][n]['auc_pr']:11.3f}" for n in smd))

    vus = {}
    if args.vus is not None:
        from training.vus import vus_pr_many

        os.environ.setdefault("VAEWATCH_PEERS_PYTHON", str(REPO / "benchmarks" / ".peers-venv" / "bin" / "python"))
        labels_v = ["mean", *[r for r in args.vus if r != "mean"]]
        for label in labels_v:
            if label not in results:
                rule, kp = label.split("@")
                run(rule, int(kp))
        pairs, data, meta = [], [], []
        for label in labels_v:
            for s in series:
                pairs.append((ranked(cache[(label, s["name"])]["step"]), s["labels"]))
                data.append(s["first"])
                meta.append((label, s["name"]))
        values = vus_pr_many(pairs, data=data)
        for (label, name), v in zip(meta, values, strict=True):
            vus.setdefault(label, {})[name] = v
            results[label][name]["vus_pr"] = v
        print("\nVUS-PR per family and half")
        print(f"{'rule':14s}{'SMD':>8s}{'SKAB':>8s}" + "".join(f"{h:>8s}" for h in split))
        for label in labels_v:
            row = f"{label:14s}" + "".join(f"{fam_mean(results[label], fams[g], 'vus_pr'):8.3f}" for g in ("SMD", "SKAB"))
            row += "".join(f"{fam_mean(results[label], names, 'vus_pr'):8.3f}" for names in split.values())
            print(row)

    if args.md:
        print("\n" + markdown(results, split, fams, args.md))
    Path(args.json).write_text(json.dumps({"halves": split, "results": results}, indent=1))
    print(f"\nwritten {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
