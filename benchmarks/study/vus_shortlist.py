import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import *
from vus import vus_many
import json
configs = [("A",32,"nll","none"),("A",64,"nll","none"),("A",64,"nll","max64"),("A",64,"err","max64"),("A",64,"abs","max64"),("B",64,"nll","max64"),("B",64,"err","max64"),("B",64,"abs","max64")]
triples, meta = [], []
for i in range(len(NAMES)):
    for cfg in configs:
        model, stride, kind, sm = cfg
        raw = fill(S[(i, model, stride, "test", kind)])
        s = raw if sm == "none" else centred(raw, max(PERIOD[i]["median"], 64))
        triples.append((s, labels(i), test_vals(i)[:, 0])); meta.append((cfg, i))
v = vus_many(triples)
json.dump({"meta": [[list(c), i] for c, i in meta], "vus": v}, open(".qdata/vus6.json", "w"))
res = collections.defaultdict(lambda: collections.defaultdict(list))
for (cfg, i), x in zip(meta, v):
    if x is not None: res[cfg][ds(i)].append(x)
dss = sorted({ds(i) for i in range(len(NAMES))})
print("cfg".ljust(28), "all  ", " ".join(d[4:12].rjust(8) for d in dss))
for cfg, by in sorted(res.items(), key=lambda kv: -np.mean([x for l in kv[1].values() for x in l])):
    print(str(cfg).ljust(28), f"{np.mean([x for l in by.values() for x in l]):.3f}", " ".join(f"{np.mean(by[d]):8.3f}" for d in dss))
