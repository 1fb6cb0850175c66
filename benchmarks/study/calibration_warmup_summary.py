"""Per-family summary of calibration_warmup.py rows (see its docstring)."""
import json, sys, collections
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
    modes = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    fam = collections.defaultdict(list)
    for r in rows: fam[r["series"].split("/")[0]].append(r)
    fam["overall"] = rows
    print("==", path, len(rows))
    for f, rs in fam.items():
        line = f"{f[:22]:22s} n={len(rs):2d}"
        for m in modes:
            auc = sum(r[m]["auc"] for r in rs)/len(rs); best = sum(r[m]["best"] for r in rs)/len(rs)
            f1 = sum(r[m]["f1"] for r in rs)/len(rs); al = sum(r[m]["alarm"] for r in rs)/sum(r[m]["lab"] for r in rs)
            line += f" | {m} auc {auc:.3f} best {best:.3f} f1 {f1:.3f} r {f1/best:.2f} al {al:.2f}"
        print(line)
    for m in modes[1:]:
        w = sum(r[m]["auc"] > r["shipped"]["auc"] + 0.01 for r in rows); l = sum(r[m]["auc"] < r["shipped"]["auc"] - 0.01 for r in rows)
        print(f"{m}: AUC W/L {w}/{l}")
