"""`loopml demo`: the loop so far, end to end on generated data, in a fresh workspace.

1. data: a credit dataset is ingested as a version (PII hashed, profile, inferred contract),
   a later batch with bad rows is validated against the contract, and the version is split;
2. train: a search over linear and boosted models (every trial a nested run), the final model
   chosen by greedy ensemble selection over the trials' out-of-fold predictions and refitted,
   evaluated on the test split (metrics, curves, fairness by gender, explanations) and
   written up as a model card, with lineage back to the dataset version;
3. the runs are read back from the store;
4. the model, registered as ``demo@1``, is exported to ONNX (parity proved on the test rows,
   native vs ONNX latency measured), passes the gates and becomes ``champion``; a weaker
   challenger is trained and the gates refuse it, with the attempt in the alias history;
5.–8. the closing loop (:mod:`loopml.demo_loop`): ``demo@champion`` is served; traffic from
   the world it knows, then from a shifted one, arrives with labels; the monitor raises drift
   and performance alerts on the shift; the retraining policy trains, gates and promotes a
   challenger; the server swaps to it and performance recovers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.config import ProjectConfig
    from loopml.data import Catalog
    from loopml.registry.promote import Promotion
    from loopml.store.records import RunRecord
    from loopml.train.runner import TrainOutcome
    from loopml.workspace import Workspace

SEED = 7
PROJECT = "demo"
TARGET = "default"
# The champion's gates: quality, no worse than the champion on the same rows, fairness by
# gender, a single-row latency budget, a size limit, and the data contract.
GATES = {"metrics": ["roc_auc >= 0.65"],
         "beats_champion": {"metric": "roc_auc", "min_delta": 0.0},
         "fairness": {"metric": "demographic_parity_difference", "max": 0.2,
                      "sensitive": ["gender"]},
         "latency_p99_ms": 50, "max_size_mb": 50, "data_contract": True}


def run_demo(directory: Path | None, *, console: Console) -> Path:
    """Run the demo in ``directory`` (default: a new temp folder); return the workspace path."""
    from rich.markup import escape

    from loopml.config import ProjectConfig
    from loopml.data import Catalog
    from loopml.data.catalog import workspace_pii_key
    from loopml.demo_data import make_credit
    from loopml.registry import load_model
    from loopml.tracking import TrackingClient
    from loopml.train.runner import train_project
    from loopml.train.select import describe
    from loopml.views import runs as views
    from loopml.workspace import Workspace

    home = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="loopml-demo-"))
    workspace = Workspace.from_env(home, env={})
    client = TrackingClient.from_workspace(workspace)
    catalog = Catalog(client.store, client.artifacts, pii_key=workspace_pii_key(workspace))
    console.rule("[bold]loopml demo")
    console.print(f"workspace: {workspace.home}\nstore:     {client.store.display_url}\n"
                  f"artifacts: {client.artifacts.root}\n")
    _data_step(catalog, workspace.home, console)

    console.rule("[bold]2 · train")
    config = ProjectConfig.model_validate({
        "project": {"name": PROJECT},
        "data": {"dataset": "credit", "target": TARGET, "sensitive": ["gender"],
                 "split": {"method": "stratified", "seed": SEED}},
        "train": {"candidates": ["linear", "hist_gradient_boosting", "lightgbm", "xgboost"],
                  "trials": 24, "time_budget_s": 45, "metric": "roc_auc", "seed": SEED},
    })
    console.print("searching linear, hist-gradient-boosting, LightGBM and XGBoost models "
                  "(24 trials or 45 s, 5-fold CV, trials in parallel on every core)")
    outcome = train_project(config, workspace=workspace, console=console)

    console.rule("[bold]3 · runs")
    trials = sorted(client.list_runs(parent_id=outcome.run_id, limit=None),
                    key=lambda r: r.name)
    latest = client.store.metrics.latest([r.id for r in trials])

    def cv_score(run: RunRecord) -> float:
        point = latest.get(run.id, {}).get("roc_auc")
        return point.value if point is not None else float("-inf")

    ranked = sorted(trials, key=cv_score, reverse=True)[:5]
    console.print("the five best trials (roc_auc is the cross-validated score):")
    console.print(views.runs_table(ranked, latest))
    evaluation = outcome.card["evaluation"]
    fairness = evaluation["fairness"]["gender"]
    selection = outcome.card["model"].get("selection")
    if selection is not None:
        console.print(
            f"\nthe final model, by greedy ensemble selection over the {selection['library']} "
            f"best trials' out-of-fold predictions: {describe(outcome.card)} (out-of-fold "
            f"ROC-AUC {selection['ensemble_cv_score']:.4f} for the ensemble, "
            f"{selection['best_single_cv_score']:.4f} for the best single trial; kept: "
            f"{selection['kept']})")
    console.print(
        f"\n[bold]Final[/] {describe(outcome.card)}: test ROC-AUC "
        f"{evaluation['metrics']['roc_auc']:.3f}, threshold {outcome.model.threshold:.2f}; "
        f"demographic-parity difference by gender "
        f"{fairness['demographic_parity_difference']:.3f}; top drivers: "
        + ", ".join(list(evaluation["explanations"]["importance"])[:3])
    )
    model = load_model(outcome.run_id, workspace=workspace)  # signature checked first
    sample = make_credit(5, seed=SEED + 2)
    console.print(
        f"loopml.load_model({outcome.run_id[:8]!r}) → {type(model).__name__}; predictions for 5 "
        f"new applicants: {escape(str(model.predict(sample).tolist()))}, P(default) "
        + ", ".join(f"{p:.2f}" for p in model.predict_proba(sample)[:, 1]))
    console.print(f"[bold]Model card:[/] {escape(str(outcome.card_path))}")
    _registry_step(config, outcome, workspace, console)
    from loopml.demo_loop import run_loop

    run_loop(workspace, config, console, seed=SEED)
    console.print(
        f"\nTry:  export LOOPML_HOME={workspace.home}\n"
        "      loopml data show credit          # profile, splits, and the runs that used it\n"
        f"      loopml runs show {outcome.run_id[:8]}        # the training run and its trials\n"
        "      loopml models show demo@champion  # signature, lineage, ONNX parity and speed\n"
        "      loopml models history demo        # who moved which alias, when and why\n"
        "      loopml models bundle demo@champion demo.zip   # model.onnx + predict.py\n"
        "      loopml serve demo@champion        # the REST API (docs at /docs)\n"
        "      loopml monitor demo@champion --window 500rows   # drift, quality, performance\n"
        "      loopml alerts list                # what the monitor raised"
    )
    return workspace.home


def _registry_step(config: ProjectConfig, outcome: TrainOutcome, workspace: Workspace,
                   console: Console) -> None:
    """Export the model to ONNX, gate it into champion, then watch a weaker one refused."""
    from rich.markup import escape

    from loopml.config import ProjectConfig
    from loopml.registry.export import export_onnx
    from loopml.registry.promote import promote
    from loopml.registry.registry import Registry
    from loopml.train.runner import train_project
    from loopml.views import models as views

    console.rule("[bold]4 · registry, ONNX and gates")
    version = outcome.version
    console.print(f"registered as [bold]{escape(version.ref)}[/] (signature from the data "
                  "contract, lineage back to the dataset version and the run)")
    gates = ProjectConfig.model_validate({"gates": GATES}).gates
    with Registry.open(workspace) as registry:
        with console.status("exporting to ONNX, proving parity, profiling native vs ONNX"):
            export = export_onnx(registry, version)
        views.print_export(console, export.export)
        first = promote(registry, version.name, version.version, to="champion", gates=gates,
                        actor="demo", sensitive=["gender"], seed=SEED)
        _say_promotion(console, first)

        console.print("[bold]A weaker challenger[/]: the same search on two columns only "
                      "(age, years_at_address)")
        weak_config = config.model_copy(update={
            "features": config.features.model_copy(update={"numeric": ["age",
                                                                        "years_at_address"],
                                                           "categorical": []}),
            "train": config.train.model_copy(update={"candidates": ["linear"], "trials": 2,
                                                     "time_budget_s": None})})
        weak = train_project(weak_config, workspace=workspace, console=console)
        second = promote(registry, weak.version.name, weak.version.version, to="champion",
                         gates=gates, actor="demo", sensitive=["gender"], seed=SEED)
        _say_promotion(console, second)
        console.print("every attempt is in the alias history:")
        console.print(views.history_table(version.name, registry.history(version.name)))


def _say_promotion(console: Console, done: Promotion) -> None:
    """Print a promotion's gate report and what it did (the stored outcome, not a guess)."""
    from rich.markup import escape

    from loopml.views import gates as gate_views

    ref = escape(f"{done.challenger.name}@champion")
    if done.event is None:
        console.print(f"{ref} already points at version {done.challenger.version}")
        return
    gate_views.print_gate_report(console, done.report)
    if done.moved:
        console.print(f"[green]promoted[/]: {ref} → {done.challenger.version}\n")
    else:
        console.print(f"[red]refused[/]: {ref} stays at {done.event.from_version}")


def _data_step(catalog: Catalog, home: Path, console: Console) -> None:
    from loopml.data import SplitSpec, resolve_source
    from loopml.demo_data import make_credit
    from loopml.views import data as views

    console.rule("[bold]1 · data")
    folder = home / "demo-data"
    folder.mkdir(parents=True, exist_ok=True)
    make_credit(5000, seed=SEED).to_csv(folder / "credit.csv", index=False)
    result = catalog.add(resolve_source(folder / "credit.csv"), name="credit", project=PROJECT,
                         target=TARGET, pii={"email": "hash"})
    report = catalog.write_report(result.version, home / "reports")
    views.print_add_result(console, result, report)
    version = result.version
    views.print_version(console, version, catalog.profile(version), [], [])

    batch = make_credit(800, seed=SEED + 1, shift=1.0).astype({"income": object})
    batch.loc[[3, 17, 41], "income"] = "n/a"
    batch.loc[[5, 6], "city"] = "Toulouse"
    batch.to_csv(folder / "new-batch.csv", index=False)
    console.print("\n[bold]A new batch arrives[/] (older, poorer customers; a few bad rows):")
    views.print_validation(console, catalog.validate(resolve_source(folder / "new-batch.csv"),
                                                     against="credit", project=PROJECT))

    spec = SplitSpec("stratified", seed=SEED, column=TARGET)
    record = catalog.split("credit@1", spec, project=PROJECT)
    console.print(f"\nsplit credit@1 stratified by {TARGET!r} (seed {SEED}): "
                  + ", ".join(f"{k} {n:,}" for k, n in record.counts.items()))
