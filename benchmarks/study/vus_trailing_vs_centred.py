import sys, glob, collections
sys.path.insert(0, __import__("os").path.dirname(__file__))
from analyse import *
from vus import vus_many
configs = [(sfx, kind, sm) for sfx in ("_s64",) for kind in ("nll", "err") for sm in ("none", "trail_P", "cent_P", "trail_64", "cent_64")]
triples, meta = [], []
for path in sorted(glob.glob(".qdata/qcache/*.npz")):
    d = load(path); key = Path(path).stem; ds = key.split("__")[0]
    lab = d["labels"].astype(int)
    P = find_length(np.nan_to_num(d["train_x"][:, 0]))
    for cfg in configs:
        sfx, kind, sm = cfg
        ks, _, _ = kinds(d, "test", sfx); raw = fill(ks[kind])
        if sm == "none": s = raw
        else:
            how, k = sm.split("_"); k = P if k == "P" else int(k)
            s = trailing(raw, k) if how == "trail" else centred(raw, k)
        triples.append((s, lab, d["test_x"][:, 0])); meta.append((cfg, ds))
v = vus_many(triples)
res = collections.defaultdict(lambda: collections.defaultdict(list))
for (cfg, ds), x in zip(meta, v):
    if x is not None: res[cfg][ds].append(x)
dss = sorted({ds for _, ds in meta})
print("cfg".ljust(30), "overall", " ".join(d[:10].rjust(10) for d in dss))
for cfg, by in sorted(res.items(), key=lambda kv: -np.mean([x for l in kv[1].values() for x in l])):
    allv = [x for l in by.values() for x in l]
    print(str(cfg).ljust(30), f"{np.mean(allv):.3f}  ", " ".join(f"{np.mean(by[d]):10.3f}" for d in dss))
