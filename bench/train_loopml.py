"""The train benchmark's loopml-side helpers: its config, its split, and what its card says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train_data import BenchData

PROJECT = "bench"
SEED = 0


def config_for(data: BenchData, csv: Path, train: dict[str, Any]):
    from loopml.config import ProjectConfig

    return ProjectConfig.model_validate({
        "project": {"name": PROJECT},
        "data": {"dataset": data.name, "source": str(csv), "target": data.target,
                 "task": data.task, "sensitive": data.sensitive, "pii": data.pii},
        "train": train,
    })


def split_parts(workspace: Path, data: BenchData, split: dict[str, Any]):
    """Return loopml's {train, validation, test} frames, from the split recorded in the card."""
    from loopml.data import Catalog, SplitSpec
    from loopml.workspace import Workspace

    spec = SplitSpec(method=split["method"], fractions=tuple(split["fractions"]),
                     seed=split["seed"], column=split["column"])
    catalog = Catalog.from_workspace(Workspace.from_env(workspace, env={}))
    return catalog.load_split(data.name, spec, project=PROJECT)


def search_summary(card: dict[str, Any]) -> dict[str, Any]:
    search = card.get("search") or {}
    trials = search.get("trials") or []
    per: dict[str, dict[str, float]] = {}
    for trial in trials:
        entry = per.setdefault(trial.get("model") or "?", {"trials": 0, "complete": 0,
                                                           "seconds": 0.0})
        entry["trials"] += 1
        entry["complete"] += trial.get("state") == "COMPLETE"
        entry["seconds"] += trial.get("seconds") or 0.0
    for entry in per.values():
        entry["mean_trial_s"] = entry["seconds"] / entry["trials"]
    work = sum(t.get("seconds") or 0.0 for t in trials)
    workers, seconds = search.get("workers") or 1, search.get("seconds") or 0.0
    return {"seconds": seconds, "workers": workers,
            "validation": search.get("validation"), "total": search.get("total", len(trials)),
            "complete": search.get("complete"), "pruned": search.get("pruned"),
            "failed": sum(1 for t in trials if t.get("state") == "FAIL"),
            "best_cv_score": search.get("best_score"), "trial_seconds_sum": work,
            "efficiency": work / (workers * seconds) if seconds else None,
            "by_candidate": per,
            "trials": [{k: t.get(k) for k in ("number", "model", "state", "value", "seconds")}
                       for t in trials]}


def final_model(card: dict[str, Any]) -> dict[str, Any]:
    """Return the card's final model: the candidate, or an ensemble's members and weights.

    Read defensively: the card's ``model`` section grows as the ensemble work lands.
    """
    model = card.get("model") or {}
    members = model.get("ensemble") or []
    if members:
        summary = "ensemble: " + " + ".join(
            f"{m.get('candidate', '?')} ×{m.get('weight', 0):.2f}" for m in members)
    else:
        summary = str(model.get("candidate", "?"))
    return {"candidate": model.get("candidate"), "params": model.get("params"),
            "threshold": model.get("threshold"), "ensemble": members or None,
            "selection": model.get("selection"), "summary": summary}
