import sys, numpy as np
sys.path.insert(0, ".")
from pathlib import Path
from benchmarks.quality import series_folders
from schemas.series_csv import read_series_csv
arrs = {}; names = []
for f in series_folders(Path("../shared/data"), None, False):
    te = read_series_csv(f / "test.csv"); tr = read_series_csv(f / "train.csv")
    if te.labels is None or te.labels.sum() == 0: continue
    i = len(names); names.append(f"{f.parent.name}__{f.name}")
    arrs[f"tr{i}"] = tr.values.astype(np.float32); arrs[f"te{i}"] = te.values.astype(np.float32)
    arrs[f"trl{i}"] = (tr.labels if tr.labels is not None else np.zeros(len(tr.values))).astype(np.int8)
    arrs[f"tel{i}"] = te.labels.astype(np.int8)
np.savez_compressed(".qdata/pack.npz", names=np.array(names), **arrs)
