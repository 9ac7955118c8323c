"""Learning curves of a run: held-out errors against steps, beside the constant baselines.

Reads RUN/heldout.jsonl (`homae_model.training.monitor`, one line per held-out check) and draws
one panel per quantity (hand MJE, PA-MJE, object ADD-S, GT-free MJE): the model's curve and the
constant baseline as a dashed line, so a run that does not learn from the image is visible at a
glance.
"""

from __future__ import annotations

import json
from pathlib import Path

PANELS: tuple[tuple[str, str | None, str], ...] = (
    ("MJE", "baseline MJE", "hand MJE, GT-anchored (mm)"),
    ("PA-MJE", "baseline PA-MJE (articulation)", "hand PA-MJE, GT-anchored (mm)"),
    ("ADD-S", "baseline ADD-S", "object ADD-S, GT-anchored (mm)"),
    ("GT-free MJE", "baseline MJE", "hand MJE, GT-free anchor (mm)"),
)
"""(model key, baseline key, title) of each panel."""


def read_heldout(path: str | Path) -> list[dict[str, float]]:
    """The held-out records of a run, sorted by step (a repeated step keeps its last record)."""
    records: dict[int, dict[str, float]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            records[int(rec["step"])] = rec
    return [records[k] for k in sorted(records)]


def plot_learning_curves(records: list[dict[str, float]], out: str | Path, title: str = "") -> Path:
    """Write the learning-curve PNG of held-out records (see the module doc); returns `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        raise ValueError("no held-out records to plot")
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    for ax, (key, base, name) in zip(axes, PANELS, strict=True):
        ax.plot(steps, [r.get(key, float("nan")) for r in records], "o-", label="model")
        if base is not None and base not in records[-1]:
            base = base.split(" (")[0]  # records written before the articulation baseline
        if base is not None and base in records[-1]:
            ax.axhline(records[-1][base], color="grey", ls="--", label="constant baseline")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
