"""A generated, realistic credit-default dataset for the demo and tests (fixed seed, no download).

Customers with an age, income, debt, employment type, city, years at their address, a
sensitive attribute (``gender``) and personal data (``email``); the target ``default``
follows a logistic model of the financial columns, so models have something real to learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def make_credit(n: int = 5000, *, seed: int = 7, shift: float = 0.0,
                concept: float = 0.0) -> pd.DataFrame:
    """Return ``n`` customers; ``shift`` > 0 makes a later, drifted population (older, poorer).

    ``concept`` > 0 changes what drives default (a concept shift): debt weighs less, while
    short stays at an address and living in Lille or Marseille weigh more (a local downturn),
    so a model of the old world ranks the new customers badly.

    >>> make_credit(10).shape
    (10, 10)
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(41 + 6 * shift, 12, n), 18, 90).round().astype(int)
    employment = rng.choice(["salaried", "self-employed", "unemployed", "retired"], n,
                            p=[0.62, 0.18, 0.08 + 0.05 * shift, 0.12 - 0.05 * shift])
    base = {"salaried": 48_000, "self-employed": 55_000, "unemployed": 14_000, "retired": 26_000}
    income = np.array([base[e] for e in employment]) * rng.lognormal(0, 0.35, n) * (1 - 0.1 * shift)
    debt = income * rng.beta(2, 5, n) * (1.2 + 0.4 * shift)
    years = rng.integers(0, 30, n)
    city = rng.choice(["Paris", "Lyon", "Marseille", "Lille", "Nantes"], n,
                      p=[0.34, 0.2, 0.18, 0.14, 0.14])
    gender = rng.choice(["female", "male"], n)
    logit = (-1.6 + 3.2 * debt / income - 0.000012 * (income - 40_000) - 0.02 * (age - 40)
             - 0.03 * years + np.where(employment == "unemployed", 1.1, 0.0)
             + np.where(gender == "female", -0.15, 0.0))
    if concept:
        local = np.where(np.isin(city, ["Lille", "Marseille"]), 2.2, -0.4)
        logit = ((1 - concept) * logit
                 + concept * (-1.9 + local + 0.09 * (10 - years) + 0.8 * debt / income))
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "customer_id": np.arange(100_000, 100_000 + n) + (0 if shift == 0 else 500_000),
        "age": age,
        "income": income.round(2),
        "debt": debt.round(2),
        "employment": employment,
        "years_at_address": years,
        "city": city,
        "gender": gender,
        "email": [f"customer{i}@{rng.choice(['mail.fr', 'post.com', 'web.de'])}"
                  for i in range(n)],
        "default": default,
    })
