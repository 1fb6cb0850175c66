"""Device-side study: train default + channel-variance models per series, dump per-step scores."""
import os, sys, time
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
from pathlib import Path
from multiprocessing import Pool
import torch

def run(i):
    torch.set_num_threads(1)
    from schemas.series_csv import SeriesTable
    from training.job import TrainOptions, train_detector
    from training.data import masked_values, split_series
    d = np.load(".qdata/pack.npz")
    name = str(d["names"][i]); ds, se = name.split("__")
    tr = d[f"tr{i}"].astype(np.float64); te = d[f"te{i}"].astype(np.float64)
    chans = tuple(f"c{j}" for j in range(tr.shape[1]))
    table = SeriesTable(Path(f"/x/{ds}/{se}/train.csv"), [""] * len(tr), chans, tr, d[f"trl{i}"])
    out = {}
    t0 = time.time()
    for model in ("A", "B"):
        opts = TrainOptions(progress=False, device="cpu", variance="point" if model == "A" else "channel")
        det = train_detector([table], opts).detector
        split = split_series(masked_values(table), opts.val_fraction, opts.window, "x")
        scale = det.scaler.scale
        floor = None; resid = None
        for part, vals in (("train", split.train), ("val", split.val), ("test", te)):
            if len(vals) < det.window:
                continue
            for stride in ((det.window // 2, det.window) if model == "A" else (det.window,)):
                det.stride = stride
                [(nll, exp, std)] = det._per_point([vals])
                obs = ~np.isnan(vals)
                z = (vals - exp) / scale
                sn = std / scale
                if floor is None:  # from the train part, first pass
                    floor = np.nanmedian(np.where(obs, sn, np.nan), axis=0)
                    resid = np.nanmean(np.where(obs, z * z, np.nan), axis=0)
                    resid = np.where(np.isfinite(resid) & (resid > 1e-12), resid, 1.0)
                    floor = np.where(np.isfinite(floor), floor, 1.0)
                sf = np.maximum(sn, floor)
                nllf = 0.5 * (np.log(2 * np.pi) + 2 * np.log(sf) + z * z / sf**2)
                with np.errstate(all="ignore"):
                    kinds = {
                        "nll": np.nanmean(np.where(obs, nll, np.nan), axis=1),
                        "err": np.nanmean(np.where(obs, z * z, np.nan), axis=1),
                        "abs": np.nanmean(np.where(obs, np.abs(z), np.nan), axis=1),
                        "maxerr": np.nanmax(np.where(obs, z * z, np.nan), axis=1),
                        "nllfloor": np.nanmean(np.where(obs, nllf, np.nan), axis=1),
                        "serr": np.nanmean(np.where(obs, z * z / resid, np.nan), axis=1),
                    }
                for k, v in kinds.items():
                    out[f"{i}|{model}|{stride}|{part}|{k}"] = v.astype(np.float32)
    print(name, f"{time.time() - t0:.0f}s", flush=True)
    return out

if __name__ == "__main__":
    n = len(np.load(".qdata/pack.npz")["names"])
    order = sorted(range(n), key=lambda i: -np.load(".qdata/pack.npz")[f"tr{i}"].size)  # big first
    started = time.time()
    with Pool(int(sys.argv[2]) if len(sys.argv) > 2 else 15) as pool:
        results = pool.map(run, order, chunksize=1)
    merged = {}
    for r in results:
        merged.update(r)
    outdir = Path(sys.argv[1])
    keys = sorted(merged)
    for g in range(4):
        part = {k.replace("|", "__"): merged[k] for k in keys if int(k.split("|")[0]) % 4 == g}
        np.savez_compressed(outdir / f"study{g}.npz", **part)
    print(f"done in {time.time() - started:.0f}s")
