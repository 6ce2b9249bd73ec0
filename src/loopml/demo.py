"""`loopml demo`: the loop so far, end to end on bundled data, in a fresh workspace.

Today: two real models are trained on scikit-learn's bundled breast-cancer data while
every epoch, parameter, figure and model file is tracked; then the runs are listed,
shown and compared from the store. Later parts extend this to the whole loop.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from loopml.tracking import ActiveRun, TrackingClient

SEED = 7
EPOCHS = 40


def run_demo(directory: Path | None, *, console: Console) -> Path:
    """Run the demo in ``directory`` (default: a new temp folder); return the workspace path."""
    from loopml.tracking import TrackingClient
    from loopml.views import runs as views
    from loopml.workspace import Workspace

    home = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="loopml-demo-"))
    workspace = Workspace.from_env(home, env={})
    client = TrackingClient.from_workspace(workspace)
    console.rule("[bold]loopml demo")
    console.print(f"workspace: {workspace.home}\nstore:     {client.store.display_url}\n"
                  f"artifacts: {client.artifacts.root}\n")

    data = _load_data()
    with client.start_run("demo", project="demo", tags={"data": "sklearn breast_cancer"}) as parent:
        parent.log_params({"dataset": "breast_cancer", "rows": len(data["y"]),
                           "features": data["X"].shape[1], "seed": SEED, "test_size": 0.25})
        _train_sgd(client, parent, data, console)
        _train_boosting(client, parent, data, console)
    client.close()

    detail = client.run_detail(parent.id)
    children = [client.run_detail(child) for child in detail.children]
    console.print()
    console.print(views.runs_table([c.run for c in children],
                                   {c.run.id: c.metrics for c in children}))
    console.print(views.compare_table(children))
    best = max(children, key=lambda c: c.metrics["test_auc"].value)
    views.print_detail(console, best)
    console.print(
        f"\n[bold]Recorded[/] {len(children)} runs under [cyan]{parent.id[:12]}[/] in "
        f"{workspace.home}.\nTry:  LOOPML_HOME={workspace.home} loopml runs list --children\n"
        f"      LOOPML_HOME={workspace.home} loopml runs metric {best.run.id[:8]} train_loss"
    )
    return workspace.home


def _load_data() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=SEED, stratify=y
    )
    return {"X": X, "y": y, "X_train": X_train, "X_test": X_test,
            "y_train": y_train, "y_test": y_test}


def _train_sgd(client: TrackingClient, parent: ActiveRun, data: dict[str, np.ndarray],
               console: Console) -> None:
    import numpy as np
    from rich.progress import Progress
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": EPOCHS}
    with client.start_run("sgd-logistic", project="demo", parent=parent) as run:
        run.log_params(params)
        scaler = StandardScaler().fit(data["X_train"])
        X_train, X_test = scaler.transform(data["X_train"]), scaler.transform(data["X_test"])
        model = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=SEED)
        classes = np.unique(data["y"])
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("training sgd-logistic", total=EPOCHS)
            for epoch in range(EPOCHS):
                model.partial_fit(X_train, data["y_train"], classes=classes)
                run.log_metrics({
                    "train_loss": log_loss(data["y_train"], model.predict_proba(X_train)),
                    "test_auc": roc_auc_score(data["y_test"], model.predict_proba(X_test)[:, 1]),
                }, step=epoch)
                progress.advance(task)
        _log_evaluation(run, make_pipeline(scaler, model), data)


def _train_boosting(client: TrackingClient, parent: ActiveRun, data: dict[str, np.ndarray],
                    console: Console) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score

    params = {"model": "HistGradientBoostingClassifier", "max_iter": 120, "learning_rate": 0.1,
              "max_leaf_nodes": 15}
    with client.start_run("hist-gradient-boosting", project="demo", parent=parent) as run:
        run.log_params(params)
        model = HistGradientBoostingClassifier(
            max_iter=params["max_iter"], learning_rate=params["learning_rate"],
            max_leaf_nodes=params["max_leaf_nodes"], early_stopping=False, random_state=SEED,
        )
        with console.status("training hist-gradient-boosting"):
            model.fit(data["X_train"], data["y_train"])
        stages = zip(model.staged_predict_proba(data["X_train"]),
                     model.staged_predict_proba(data["X_test"]), strict=True)
        for step, (p_train, p_test) in enumerate(stages):
            run.log_metrics({"train_loss": log_loss(data["y_train"], p_train),
                             "test_auc": roc_auc_score(data["y_test"], p_test[:, 1])}, step=step)
        _log_evaluation(run, model, data)


def _log_evaluation(run: ActiveRun, model: object, data: dict[str, np.ndarray]) -> None:
    import joblib
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score

    predicted = model.predict(data["X_test"])  # type: ignore[attr-defined]
    proba = model.predict_proba(data["X_test"])[:, 1]  # type: ignore[attr-defined]
    run.log_metrics({"test_accuracy": accuracy_score(data["y_test"], predicted),
                     "test_f1": f1_score(data["y_test"], predicted)})
    figure, axes = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(data["y_test"], predicted, ax=axes, colorbar=False)
    run.log_artifact(figure, "confusion_matrix.png")
    plt.close(figure)
    run.log_artifact(pd.DataFrame({"y_true": data["y_test"], "y_pred": predicted,
                                   "proba": proba}), "test_predictions.parquet")
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run.log_artifact(buffer.getvalue(), "model.joblib")
