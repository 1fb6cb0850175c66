import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import *
from sklearn.metrics import average_precision_score
configs = []
for model, stride in (("A", 32), ("A", 64), ("B", 64)):
    for kind in ("nll", "err", "abs", "nllfloor", "serr", "maxerr"):
        for sm in ("c_median", "c_128", "c_max64", "c_max96", "c_clip", "c_max32"):
            configs.append((model, stride, kind, sm))
res = collections.defaultdict(lambda: collections.defaultdict(list))
for i in range(len(NAMES)):
    lab = labels(i)
    for cfg in configs:
        model, stride, kind, sm = cfg
        raw = fill(S[(i, model, stride, "test", kind)])
        if sm == "none": s = raw
        else:
            how, what = sm.split("_")
            pm = PERIOD[i]["median"]
            k = {"first": PERIOD[i]["first"], "median": pm, "max64": max(pm, 64), "max96": max(pm, 96), "max32": max(pm, 32), "clip": min(max(pm, 64), 256)}.get(what) or int(what)
            s = centred(raw, k) if how == "c" else trailing(raw, k)
        res[cfg][ds(i)].append(average_precision_score(lab, s))
dss = sorted({ds(i) for i in range(len(NAMES))})
rows = sorted(res.items(), key=lambda kv: -np.mean([x for l in kv[1].values() for x in l]))
print("cfg".ljust(28), "all  ", " ".join(d[4:12].rjust(8) for d in dss))
for cfg, by in rows[:25]:
    print(str(cfg).ljust(28), f"{np.mean([x for l in by.values() for x in l]):.3f}", " ".join(f"{np.mean(by[d]):8.3f}" for d in dss))
