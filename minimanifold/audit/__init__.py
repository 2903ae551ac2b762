"""Audit someone else's training run: the paper's analyses on any series of checkpoints,
each number beside its null, written as a folder like a preset's (``claims.md``,
``claims.json``, figures, per-series records).

    python -m minimanifold.audit SOURCE [SOURCE ...] --out DIR [--map bubble|attention-log|MAP.json]

Several SOURCEs are several seeds of one configuration. ``series`` reads them (PyTorch,
safetensors, NumPy, our run directories), ``names`` maps other layouts onto our names,
``report`` measures and writes. From Python: ``audit([...], "out")``.
"""
from __future__ import annotations

import os

from ..report.owner import check_owner
from . import forward
from .names import load_map
from .report import claims, forward_summary, measure, summary, write
from .series import SeriesError, snapshots


def audit(sources, out_dir, name_map=None, n_heads=None, overwrite=False, log=print, batch=None, lr=None) -> dict:
    """Measure every SOURCE (one seed each), then write ``out_dir``. ``batch`` (a batch file
    or task settings, ``forward.load_batch``) adds the forward-pass measurements, ``lr`` the
    commutators. Returns {"claims", "geometry", "exact", "forward", "steps", "written"}.
    Every input is read and checked before anything is written; SeriesError, NameMapError
    and OwnedByAnother say what is wrong."""
    sources = [os.fspath(s) for s in sources]
    caption = f"audit of {len(sources)} series: " + ", ".join(os.path.basename(os.path.normpath(s)) for s in sources)
    check_owner(out_dir, caption, False, overwrite)
    mapping = load_map(name_map)
    steps, geoms, exact, fwd, shapes, probe = [], [], [], [], None, None
    for i, src in enumerate(sources):
        st, mats, states = snapshots(src, mapping, n_heads, keep_state=batch is not None, progress=log)
        sig = {k: v.shape[1] for k, v in mats.items()}
        if shapes is not None and sig != shapes:
            raise SeriesError(f"{src}: its attention matrices differ from {sources[0]}'s "
                              f"(seeds of one configuration must have the same shapes)")
        shapes = sig
        log(f"measuring {src}: {len(st)} snapshots, {sum(sig.values()):,} attention parameters")
        g, e = measure(mats)
        if batch is not None:
            cfg = forward.model_of(states, src)
            probe = forward.load_batch(batch, cfg) if probe is None else probe
            fwd.append(forward.measure(states, mats, probe, cfg, lr, seed=i))
        steps.append(st)
        geoms.append(g)
        exact.append(e)
    rows = claims(geoms, exact, fwd)
    written = write(out_dir, sources, steps, geoms, exact, rows, caption, fwd)
    log(summary(geoms, exact, steps))
    if fwd:
        log(forward_summary(fwd))
    log("\n".join(f"  claim {n} {rows[n].verdict:>13}: {rows[n].claim} — {rows[n].measured}" for n in sorted(rows)))
    return {"claims": rows, "geometry": geoms, "exact": exact, "forward": fwd, "steps": steps, "written": written}
