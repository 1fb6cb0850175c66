import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import *
from vaecore.calibration import pot_threshold, quantile_threshold
from training.metrics import best_f1, f1_at
cfgs = [("A",64,"err"),("B",64,"err"),("A",64,"nll"),("A",64,"abs")]
for cfg in cfgs:
    rules = collections.defaultdict(lambda: collections.defaultdict(list))
    for i in range(len(NAMES)):
        model, stride, kind = cfg
        k = max(PERIOD[i]["median"], 64)
        lab = labels(i)
        test = centred(fill(S[(i, model, stride, "test", kind)]), k)
        parts = [trailing(fill(S[(i, model, stride, p, kind)]), k) for p in ("train", "val") if (i, model, stride, p, kind) in S]
        pool = np.concatenate(parts); val = parts[-1]
        bf = best_f1(test, lab)
        def add(name, th):
            pred = test > th
            rules[name][ds(i)].append((f1_at(pred, lab), bf, pred.mean(), lab.mean()))
        n = len(pool)
        for risk in (1e-2, 3e-3, 1e-3):
            add(f"pot_{risk}", pot_threshold(pool, max(risk, 10 / n)))
            add(f"q_{risk}", quantile_threshold(pool, max(risk, 10 / n)))
        add("max", pool.max())
        med = np.median(pool); iqr = np.subtract(*np.quantile(pool, [.75, .25]))
        for c in (2, 3, 4, 6):
            add(f"med+{c}iqr", med + c * iqr)
        mx = pool.max()
        for f in (0.8, 0.9):
            add(f"{f}max", med + f * (mx - med))
    dss = sorted({ds(i) for i in range(len(NAMES))})
    print(cfg)
    for name, by in rules.items():
        allv = [x for l in by.values() for x in l]
        f1 = np.mean([a for a, *_ in allv]); b = np.mean([b for _, b, *_ in allv])
        cells = []
        for d in dss:
            v = by[d]; cells.append(f"{np.mean([a for a,*_ in v]):.2f}/{np.mean([b for _,b,*_ in v]):.2f} a{np.mean([c for *_,c,_ in v])/max(np.mean([e for *_,e in v]),1e-9):.1f}")
        print(" ", name.ljust(10), f"{f1:.3f}/{b:.3f}={f1/b:.2f} |", " | ".join(cells))
