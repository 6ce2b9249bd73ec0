"""`loopml demo`: the loop so far, end to end on generated data, in a fresh workspace.

1. data: a credit dataset is ingested as a version (PII hashed, profile, inferred contract),
   a later batch with bad rows is validated against the contract, and the version is split;
2. train: two real models learn from the train split while every epoch, parameter, figure
   and model file is tracked, with lineage back to the dataset version;
3. the runs are listed and compared from the store.
Later parts extend this to the whole loop.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from loopml.data import Catalog
    from loopml.tracking import ActiveRun, TrackingClient

SEED = 7
EPOCHS = 40
PROJECT = "demo"
TARGET = "default"
FEATURES_NUMERIC = ["age", "income", "debt", "years_at_address"]
FEATURES_CATEGORICAL = ["employment", "city"]


def run_demo(directory: Path | None, *, console: Console) -> Path:
    """Run the demo in ``directory`` (default: a new temp folder); return the workspace path."""
    from loopml.data import Catalog
    from loopml.data.catalog import workspace_pii_key
    from loopml.tracking import TrackingClient
    from loopml.views import runs as views
    from loopml.workspace import Workspace

    home = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="loopml-demo-"))
    workspace = Workspace.from_env(home, env={})
    client = TrackingClient.from_workspace(workspace)
    catalog = Catalog(client.store, client.artifacts, pii_key=workspace_pii_key(workspace))
    console.rule("[bold]loopml demo")
    console.print(f"workspace: {workspace.home}\nstore:     {client.store.display_url}\n"
                  f"artifacts: {client.artifacts.root}\n")

    parts = _data_step(catalog, workspace.home, console)
    with client.start_run("demo", project=PROJECT, tags={"data": "credit@1"}) as parent:
        parent.log_params({"dataset": "credit", "rows": sum(len(p) for p in parts.values()),
                           "seed": SEED, "split": "stratified 70/15/15"})
        for train in (_train_sgd, _train_boosting):
            run_id = train(client, parent, parts, console)
            catalog.log_input(run_id, "credit@1", role="train", project=PROJECT)
            catalog.log_input(run_id, "credit@1", role="test", project=PROJECT)
    client.close()

    detail = client.run_detail(parent.id)
    children = [client.run_detail(child) for child in detail.children]
    console.rule("[bold]3 · runs")
    console.print(views.runs_table([c.run for c in children],
                                   {c.run.id: c.metrics for c in children}))
    console.print(views.compare_table(children))
    best = max(children, key=lambda c: c.metrics["test_auc"].value)
    views.print_detail(console, best)
    console.print(
        f"\n[bold]Recorded[/] {len(children)} runs under [cyan]{parent.id[:12]}[/] in "
        f"{workspace.home}.\nTry:  export LOOPML_HOME={workspace.home}\n"
        "      loopml data show credit          # profile, splits, and the runs that used it\n"
        "      loopml runs list --children\n"
        f"      loopml runs metric {best.run.id[:8]} train_loss"
    )
    return workspace.home


def _data_step(catalog: Catalog, home: Path, console: Console) -> dict[str, pd.DataFrame]:
    from loopml.data import SplitSpec, resolve_source
    from loopml.demo_data import make_credit
    from loopml.views import data as views

    console.rule("[bold]1 · data")
    folder = home / "demo-data"
    folder.mkdir(parents=True, exist_ok=True)
    make_credit(5000, seed=SEED).to_csv(folder / "credit.csv", index=False)
    result = catalog.add(resolve_source(folder / "credit.csv"), name="credit", project=PROJECT,
                         target=TARGET, pii={"email": "hash"})
    report = home / "reports" / "data-credit-1.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(catalog.report_html(result.version), encoding="utf-8")
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
    parts = catalog.load_split("credit@1", spec, project=PROJECT)
    console.print(f"\nsplit credit@1 stratified by {TARGET!r} (seed {SEED}): "
                  + ", ".join(f"{k} {len(v):,}" for k, v in parts.items()))
    return parts


def _features(parts: dict[str, pd.DataFrame]) -> tuple:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer([
        ("numeric", StandardScaler(), FEATURES_NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), FEATURES_CATEGORICAL),
    ])
    X_train = encode.fit_transform(parts["train"])
    X_test = encode.transform(parts["test"])
    return encode, X_train, parts["train"][TARGET].to_numpy(), X_test, \
        parts["test"][TARGET].to_numpy()


def _train_sgd(client: TrackingClient, parent: ActiveRun, parts: dict[str, pd.DataFrame],
               console: Console) -> str:
    import numpy as np
    from rich.progress import Progress
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline

    console.rule("[bold]2 · train")
    encode, X_train, y_train, X_test, y_test = _features(parts)
    params = {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": EPOCHS}
    with client.start_run("sgd-logistic", project=PROJECT, parent=parent) as run:
        run.log_params(params)
        model = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=SEED)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("training sgd-logistic", total=EPOCHS)
            for epoch in range(EPOCHS):
                model.partial_fit(X_train, y_train, classes=np.array([0, 1]))
                run.log_metrics({
                    "train_loss": log_loss(y_train, model.predict_proba(X_train)),
                    "test_auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]),
                }, step=epoch)
                progress.advance(task)
        _log_evaluation(run, make_pipeline(encode, model), parts)
    console.print(f"trained sgd-logistic ({run.id[:12]})")
    return run.id


def _train_boosting(client: TrackingClient, parent: ActiveRun, parts: dict[str, pd.DataFrame],
                    console: Console) -> str:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline

    encode, X_train, y_train, X_test, y_test = _features(parts)
    params = {"model": "HistGradientBoostingClassifier", "max_iter": 150, "learning_rate": 0.05,
              "max_leaf_nodes": 15}
    with client.start_run("hist-gradient-boosting", project=PROJECT, parent=parent) as run:
        run.log_params(params)
        model = HistGradientBoostingClassifier(
            max_iter=params["max_iter"], learning_rate=params["learning_rate"],
            max_leaf_nodes=params["max_leaf_nodes"], early_stopping=False, random_state=SEED,
        )
        with console.status("training hist-gradient-boosting"):
            model.fit(X_train, y_train)
        stages = zip(model.staged_predict_proba(X_train), model.staged_predict_proba(X_test),
                     strict=True)
        for step, (p_train, p_test) in enumerate(stages):
            run.log_metrics({"train_loss": log_loss(y_train, p_train),
                             "test_auc": roc_auc_score(y_test, p_test[:, 1])}, step=step)
        _log_evaluation(run, make_pipeline(encode, model), parts)
    console.print(f"trained hist-gradient-boosting ({run.id[:12]})")
    return run.id


def _log_evaluation(run: ActiveRun, model: object, parts: dict[str, pd.DataFrame]) -> None:
    import joblib
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score

    test = parts["test"]
    predicted = model.predict(test)  # type: ignore[attr-defined]
    proba = model.predict_proba(test)[:, 1]  # type: ignore[attr-defined]
    run.log_metrics({"test_accuracy": accuracy_score(test[TARGET], predicted),
                     "test_f1": f1_score(test[TARGET], predicted)})
    figure, axes = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(test[TARGET], predicted, ax=axes, colorbar=False)
    run.log_artifact(figure, "confusion_matrix.png")
    plt.close(figure)
    run.log_artifact(pd.DataFrame({"customer_id": test["customer_id"], "y_true": test[TARGET],
                                   "y_pred": predicted, "proba": proba}),
                     "test_predictions.parquet")
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run.log_artifact(buffer.getvalue(), "model.joblib")
