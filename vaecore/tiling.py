"""Where each sub-window's outputs go when they are overlap-added back into a window: the
one rule both scoring paths (`Detector`, numpy; `vaecore.resident`, torch) follow."""

from __future__ import annotations

from collections.abc import Sequence


def overlap_slices(starts: Sequence[int], window: int, tiled: bool) -> list[tuple[int, int]]:
    """Per sub-window j (at starts[j]): (skip, lo). Its steps from `skip` on are added to the
    window's steps lo .. starts[j] + window.

    Tiled scoring (stride == window): the end-aligned last sub-window only fills the steps no
    earlier sub-window covers (skip > 0), so every other step depends on its own aligned
    sub-window alone, however long the array it arrived in. Otherwise every sub-window adds
    all its steps (skip = 0) and each step is the mean over the sub-windows covering it.
    """
    out = []
    covered = 0  # steps already covered by earlier sub-windows
    for start in starts:
        skip = max(0, covered - start) if tiled else 0
        out.append((skip, start + skip))
        covered = start + window
    return out
