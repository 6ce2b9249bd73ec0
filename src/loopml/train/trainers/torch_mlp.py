"""A tabular multi-layer perceptron in PyTorch (optional extra: ``pip install 'loopml[torch]'``).

The estimator follows the scikit-learn contract (``fit`` returns self, learned state ends
in ``_``, ``predict``/``predict_proba``), so it sits in the same pipeline as every other
trainer: the preprocessing in front of it scales numbers and one-hot encodes categories.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from loopml.train.trainers import Params


class _TabularMLP(BaseEstimator):
    def __init__(self, *, hidden: int = 128, layers: int = 2, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-5, epochs: int = 60,
                 batch_size: int = 256, random_state: int = 0, n_jobs: int = 1) -> None:
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _network(self, inputs: int, outputs: int) -> Any:
        from torch import nn

        blocks: list[Any] = []
        width = inputs
        for _ in range(self.layers):
            blocks += [nn.Linear(width, self.hidden), nn.ReLU(), nn.Dropout(self.dropout)]
            width = self.hidden
        blocks.append(nn.Linear(width, outputs))
        return nn.Sequential(*blocks)

    def _train(self, X: Any, target: Any, outputs: int, loss: Any) -> None:
        import numpy as np
        import torch

        torch.manual_seed(self.random_state)
        torch.set_num_threads(max(1, self.n_jobs))
        features = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.network_ = self._network(features.shape[1], outputs)
        optimizer = torch.optim.AdamW(self.network_.parameters(), lr=self.lr,
                                      weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self.random_state)
        self.network_.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(features), generator=generator)
            for start in range(0, len(features), self.batch_size):
                rows = order[start:start + self.batch_size]
                optimizer.zero_grad()
                loss(self.network_(features[rows]), target[rows]).backward()
                optimizer.step()
        self.network_.eval()

    def _forward(self, X: Any) -> Any:
        import numpy as np
        import torch

        with torch.no_grad():
            return self.network_(torch.as_tensor(np.asarray(X, dtype=np.float32))).numpy()


class MLPClassifier(ClassifierMixin, _TabularMLP):
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        import numpy as np
        import torch
        from torch import nn

        self.classes_, encoded = np.unique(np.asarray(y), return_inverse=True)
        self._train(X, torch.as_tensor(encoded, dtype=torch.long), len(self.classes_),
                    nn.CrossEntropyLoss())
        return self

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        logits = self._forward(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class MLPRegressor(RegressorMixin, _TabularMLP):
    def fit(self, X: Any, y: Any) -> MLPRegressor:
        import numpy as np
        import torch
        from torch import nn

        values = np.asarray(y, dtype=np.float32)
        self.mean_, self.scale_ = float(values.mean()), float(values.std() or 1.0)
        target = torch.as_tensor(((values - self.mean_) / self.scale_)[:, None])
        self._train(X, target, 1, nn.MSELoss())
        return self

    def predict(self, X: Any) -> Any:
        return self._forward(X)[:, 0] * self.scale_ + self.mean_


class TorchMLP:
    name = "mlp"
    tasks = ("binary", "multiclass", "regression")
    tree_based = False

    def __init__(self) -> None:
        import torch  # noqa: F401 - fail now, with the install hint, if the extra is missing

    def defaults(self, task: str) -> Params:
        return {"hidden": 128, "layers": 2, "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-5,
                "epochs": 60}

    def suggest(self, trial: Any, task: str) -> Params:
        return {
            "hidden": trial.suggest_int("mlp.hidden", 32, 512, log=True),
            "layers": trial.suggest_int("mlp.layers", 1, 4),
            "dropout": trial.suggest_float("mlp.dropout", 0.0, 0.5),
            "lr": trial.suggest_float("mlp.lr", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("mlp.weight_decay", 1e-7, 1e-2, log=True),
            "epochs": trial.suggest_int("mlp.epochs", 20, 200, log=True),
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        cls = MLPRegressor if task == "regression" else MLPClassifier
        return cls(random_state=seed, n_jobs=n_jobs, **params)


def make(name: str) -> TorchMLP:
    return TorchMLP()
