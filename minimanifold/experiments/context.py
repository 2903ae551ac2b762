"""What the pipeline hands every experiment module: the preset, its trained runs (main and
variant runs), where figures go, and each per-run measurement computed once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Context:
    preset: object             # trajectories.presets.Preset
    runs: list                 # sweep records of the main runs (diverged ones left out)
    variants: dict             # {variant name: sweep records}, from the modules' ``variants()``
    fig_dir: str
    caption: str               # describes the main runs
    retrains: object = None    # the retraining groups that may train now (None: every one; a
    #                            partial sitting's reports read only the retrainings finished)
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def n_layers(self) -> int:
        return self.preset.model.n_layers

    @property
    def n_extra(self) -> int:
        """Seeds of each comparison (the SAE probing's: ``preset.n_sae``)."""
        return self.preset.n_extra_seeds

    @property
    def extra_caption(self) -> str:
        n, sae, extra = len(self.runs), self.preset.n_sae, self.n_extra
        if not self.preset.comparisons:
            what = f"{sae} for SAEs; no comparisons"
        elif sae == extra:
            what = f"{extra} per comparison and for SAEs"
        else:
            what = f"{extra} per comparison, {sae} for SAEs"
        return self.caption.replace(f"{n} seeds", f"{n} seeds ({what})")

    def per_run(self, measure, runs=None) -> list:
        """[measure(run directory) for each run] (the main runs by default), computed once
        per context: experiments share measurements (Fig 2 uses §4.1's geometry)."""
        runs = self.runs if runs is None else runs
        key = (measure, tuple(r["dir"] for r in runs))
        if key not in self._memo:
            self._memo[key] = [measure(r["dir"]) for r in runs]
        return self._memo[key]

    def may_retrain(self, group) -> bool:
        return self.retrains is None or group in self.retrains

    def path(self, name) -> str:
        return os.path.join(self.fig_dir, name)
