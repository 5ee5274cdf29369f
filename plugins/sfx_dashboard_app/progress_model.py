"""Dataset progress: how a dataset's statistics grow with its crystals, and how many more
crystals reach a target. Pure functions over stored merge statistics (no DB).

Merges at several crystal counts of one dataset are not stored; each of its runs' own merge
is. Every run's merge is a sample of the same crystal at its own count, so the model's two
per-observation constants are fitted to all of them at the chosen resolution:

- observations per possible reflection grow linearly with crystals, ``λ = rate · N``
  (rate = Σ multiplicity_k · completeness_k / Σ N_k over the runs);
- completeness, with random orientations, is ``1 − exp(−λ)`` and multiplicity ``λ / completeness``;
- CC½ of two half sets of ``m/2`` observations each, with per-observation signal-to-noise
  variance ratio ``r`` (fitted as the median over the runs), is ``1 / (1 + 2 / (m r))``;
- ⟨I/σ⟩ grows as ``√m`` from the runs' median per-observation ⟨I/σ⟩ / √m.

The curve is that model at the cumulative crystal count after each run in run order; the
estimate is the smallest N where the model reaches the target (bisection), shown beside the
dataset's measured merge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METRICS = {
    "cc_half": "CC½",
    "completeness": "completeness",
    "multiplicity": "multiplicity",
    "mean_i_over_sigma": "⟨I/σ⟩",
}
MAX_CRYSTALS = 10_000_000  # beyond this a target counts as out of reach


@dataclass(frozen=True)
class RunPoint:
    """One run's merge at the chosen resolution: its crystals and that shell's statistics."""

    run: str
    crystals: int
    shell: dict | None  # None: the run measured nothing at that resolution


@dataclass(frozen=True)
class Model:
    """Per-crystal constants fitted to the runs' merges."""

    rate: float  # observations per possible reflection per crystal
    signal_noise: float  # per-observation signal/noise variance ratio (CC½)
    i_over_sigma_1: float  # ⟨I/σ⟩ of one observation

    def at(self, crystals: float) -> dict:
        """The modelled statistics of a merge of ``crystals`` crystals."""
        lam = self.rate * crystals
        completeness = 1.0 - math.exp(-lam) if lam > 0 else 0.0
        multiplicity = lam / completeness if completeness > 0 else 0.0
        cc = 1.0 / (1.0 + 2.0 / (multiplicity * self.signal_noise)) if multiplicity > 0 else 0.0
        return {
            "completeness": completeness,
            "multiplicity": multiplicity,
            "cc_half": cc if self.signal_noise > 0 else float("nan"),
            "mean_i_over_sigma": self.i_over_sigma_1 * math.sqrt(multiplicity),
        }


def shell_at(shells: list[dict], d: float) -> dict | None:
    """The shell whose resolution range holds ``d`` (Å), or None."""
    for shell in shells:
        if shell.get("d_min", 0.0) <= d <= shell.get("d_max", 0.0):
            return shell
    return None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _median(values: list[float]) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def fit(points: list[RunPoint]) -> Model | None:
    """The model's constants from the runs' shells; None without any usable run."""
    crystals = sum(p.crystals for p in points)
    measured = [p for p in points if p.shell and p.crystals > 0]
    if not crystals or not measured:
        return None
    observations = sum(
        p.shell.get("multiplicity", 0.0) * p.shell.get("completeness", 0.0)
        for p in measured
        if p.shell and _finite(p.shell.get("multiplicity")) and _finite(p.shell.get("completeness"))
    )
    ratios, per_obs = [], []
    for p in measured:
        assert p.shell is not None
        m, cc, ios = (p.shell.get(k) for k in ("multiplicity", "cc_half", "mean_i_over_sigma"))
        if _finite(m) and m > 0 and _finite(cc) and 0 < cc < 1:
            ratios.append(2.0 / (m * (1.0 / cc - 1.0)))
        if _finite(m) and m > 0 and _finite(ios):
            per_obs.append(ios / math.sqrt(m))
    ratio, one = _median(ratios), _median(per_obs)
    return Model(
        observations / crystals,
        ratio if math.isfinite(ratio) else 0.0,
        one if math.isfinite(one) else float("nan"),
    )


def crystals_needed(model: Model, metric: str, target: float) -> int | None:
    """The smallest crystal count whose modelled ``metric`` reaches ``target``; None if never."""
    if not _finite(model.at(MAX_CRYSTALS)[metric]) or model.at(MAX_CRYSTALS)[metric] < target:
        return None
    lo, hi = 0, MAX_CRYSTALS
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if model.at(mid)[metric] < target else (lo, mid)
    return hi


def estimate_text(view: dict) -> str:
    """The estimate of a :func:`progress` answer in words (plain text)."""
    at = "" if view["d"] is None else f" at {view['d']:.3g} Å"
    goal = f"{view['label']} ≥ {view['target']:g}{at}"
    if view["model"] is None:
        return f"{goal}: no merged run of this dataset measured that resolution yet"
    if view["crystals_needed"] is None:
        return f"{goal}: out of reach by the model (more crystals do not get there)"
    if view["more_crystals"] == 0:
        return f"{goal}: reached by the model with {view['crystals']} crystals"
    return (
        f"{goal}: about {view['more_crystals']} more crystals "
        f"({view['crystals_needed']} in all; {view['crystals']} so far)"
    )


def progress(points: list[RunPoint], metric: str, target: float) -> dict:
    """The curve in run order, the fitted model and the crystals needed for the target."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    model = fit(points)
    total, curve = 0, []
    for p in points:
        total += p.crystals
        curve.append(
            {
                "run": p.run,
                "crystals": total,
                "run_crystals": p.crystals,
                "measured": (p.shell or {}).get(metric),
                "model": model.at(total)[metric] if model else None,
            }
        )
    needed = crystals_needed(model, metric, target) if model else None
    return {
        "metric": metric,
        "label": METRICS[metric],
        "target": target,
        "crystals": total,
        "curve": curve,
        "model": None if model is None else model.__dict__,
        "crystals_needed": needed,
        "more_crystals": None if needed is None else max(0, needed - total),
    }
