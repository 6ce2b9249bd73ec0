"""Train, search and evaluate: from loopml.yaml to an evaluated model with a model card.

Public surface: :func:`train_project` (``runner.py``), :class:`TrainedModel` (``model.py``),
the trainer protocol and registry (``trainers/``).
"""
