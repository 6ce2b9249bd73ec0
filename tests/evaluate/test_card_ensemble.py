"""The model card of an ensemble: members, weights and the selection, escaped like all user text.

The reference is the card dict itself, read back out of the HTML by the standard library's
HTML parser: a cell that parses back to the candidate's own text was escaped, not dropped,
and a hostile name that parses back as text made no element.
"""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

import pytest

from loopml.evaluate.card import render_card

HOSTILE = "<script>alert('x')</script>"
HOSTILE_PARAM = '<img src=x onerror="alert(1)">'


class Page(HTMLParser):
    """The page's elements by tag, its h2 titles, and each table as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.titles: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []  # (title before it, rows)
        self._text: list[str] | None = None
        self._cell: list[str] | None = None
        self._rows: list[list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "h2":
            self._text = []
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._text is not None:
            self.titles.append("".join(self._text))
            self._text = None
        elif tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables.append((self.titles[-1] if self.titles else "", self._rows))
            self._rows = None

    def handle_data(self, data: str) -> None:
        for sink in (self._text, self._cell):
            if sink is not None:
                sink.append(data)

    def table(self, title: str) -> list[list[str]]:
        return next(rows for before, rows in self.tables if before == title)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def ensemble_card() -> dict[str, Any]:
    """Return a card as the runner writes it for an ensemble, with hostile user text."""
    return {
        "name": "credit/credit", "run_id": "abc123", "task": "binary", "target": "default",
        "metric": "roc_auc",
        "model": {
            "candidate": "ensemble", "params": {}, "threshold": 0.41, "classes": ["0", "1"],
            "ensemble": [
                {"trial": 3, "candidate": "logistic", "params": {"C": 0.123456789},
                 "weight": 0.5, "cv_score": 0.8123},
                {"trial": 7, "candidate": "lightgbm",
                 "params": {"num_leaves": 31, "learning_rate": 0.05}, "weight": 0.3,
                 "cv_score": 0.8071},
                {"trial": 11, "candidate": HOSTILE, "params": {HOSTILE_PARAM: "a\x1b[31mb"},
                 "weight": 0.2, "cv_score": 0.79},
            ],
            "selection": {"method": "greedy ensemble selection (Caruana et al. 2004)",
                          "rounds": 50, "library": 24, "rows": 600, "kept": "ensemble",
                          "ensemble_cv_score": 0.8199, "best_single_cv_score": 0.8123,
                          "best_single_trial": 3, "dropped_for_budget": [19, 21]},
        },
        "data": {"ref": "credit@1", "content_hash": "0123456789abcdef",
                 "rows": {"train": 600, "validation": 0, "test": 200},
                 "split": {"method": "random"},
                 "rows_seen": "the final model was refitted on the 600 train rows; the test "
                              "metrics come from the 200 test rows <it never saw>"},
        "features": {"numeric": ["age"], "categorical": ["city"], "datetime": [],
                     "dropped": {}},
        "evaluation": {"metrics": {"roc_auc": 0.81}, "rows": 200, "threshold": 0.41,
                       "explanations": {"method": "permutation", "unit": "drop in roc_auc",
                                        "importance": {}, "rows": []}},
        "search": {"candidates": ["logistic", "lightgbm"], "backend": "local", "workers": 1,
                   "seconds": 12.5, "validation": "5-fold CV", "total": 24, "complete": 24,
                   "pruned": 0, "best_score": 0.8123, "trials": []},
        "config": {"project": {"name": "credit"}},
        "timings": {"prepare": 0.4, "search": 41.2, "refit": 3.1, "evaluation": 2.0,
                    "budget": 60, "reserved": 9.5, "stopped_for_reserve": True,
                    "stop_asked_at": 50.5},
    }


def test_the_members_table_shows_each_member_as_given():
    card = ensemble_card()
    page = parse(render_card(card))

    rows = page.table("Members")
    assert rows[0] == ["trial", "candidate", "weight", "CV score", "params"]
    members = card["model"]["ensemble"]
    assert [r[0] for r in rows[1:]] == [str(m["trial"]) for m in members]
    assert [r[1] for r in rows[1:]] == [m["candidate"] for m in members]
    assert [float(r[2]) for r in rows[1:]] == pytest.approx([m["weight"] for m in members])
    assert [float(r[3]) for r in rows[1:]] == pytest.approx([m["cv_score"] for m in members],
                                                            abs=5e-5)
    assert rows[1][4] == "C=0.1235"
    assert rows[2][4] == "num_leaves=31, learning_rate=0.05"
    # an ensemble's own params are empty: its members' params stand for them
    assert "Best configuration" not in page.titles


def test_the_selection_line_says_how_and_what_was_kept():
    text = render_card(ensemble_card())

    assert "greedy ensemble selection (Caruana et al. 2004): 50 rounds over a library of " \
           "24 trials on 600 out-of-fold rows" in text
    assert "of the ensemble 0.8199, of the best single trial 0.8123" in text
    assert "the ensemble was kept: it beat the best single trial (trial 3)" in text
    assert "refit would not fit in the budget: trial(s) 19, 21." in text
    assert "<b>0.410</b>, chosen on the out-of-fold predictions of the selection" in text


def test_a_kept_single_model_still_says_how_it_was_selected():
    # the runner writes no members when the single trial was kept, only the selection
    card = ensemble_card()
    card["model"].update(candidate="logistic", params={"C": 0.5}, ensemble=None)
    card["model"]["selection"]["kept"] = "single"
    page_html = render_card(card)
    page = parse(page_html)

    assert "Selection" in page.titles and "Members" not in page.titles
    assert "the best single trial (trial 3) was kept: the ensemble did not beat it" in page_html
    assert page.table("Best configuration")[1] == ["C", "0.5"]


def test_hostile_candidate_and_param_names_are_text_not_markup():
    html = render_card(ensemble_card())
    page = parse(html)

    assert HOSTILE not in html and HOSTILE_PARAM not in html
    assert "script" not in page.tags
    assert page.tags.count("img") == html.count("<img alt='plot'")  # plots only
    hostile_row = page.table("Members")[3]
    assert hostile_row[1] == HOSTILE
    # the control character is shown escaped, never sent to the page raw
    assert hostile_row[4] == f"{HOSTILE_PARAM}=a\\x1b[31mb"
    assert "\x1b" not in html


def test_rows_seen_and_timings_are_shown():
    page_html = render_card(ensemble_card())
    page = parse(page_html)

    assert ("Rows: the final model was refitted on the 600 train rows; the test metrics come "
            "from the 200 test rows &lt;it never saw&gt;") in page_html
    timings = page.table("Timings")
    assert timings[0] == ["phase", "seconds"]
    assert [r[0] for r in timings[1:-1]] == ["prepare", "search", "refit", "evaluation"]
    assert float(timings[-1][1]) == pytest.approx(0.4 + 41.2 + 3.1 + 2.0, abs=0.01)
    assert "Budget 60 s for the whole command; 9.5 s reserved" in page_html
    assert "asked to stop at 50.5 s (it stopped to leave the reserve)" in page_html


def test_a_single_model_card_is_as_before():
    card = ensemble_card()
    card["model"] = {"candidate": "lightgbm", "params": {"num_leaves": 15}, "threshold": 0.5,
                     "classes": ["0", "1"]}
    del card["timings"]
    del card["data"]["rows_seen"]
    plain = copy.deepcopy(card)
    page = parse(render_card(card))

    assert "Members" not in page.titles and "Timings" not in page.titles
    assert "<b>0.410</b>, chosen on the validation rows" in render_card(card)
    assert page.table("Best configuration")[1] == ["num_leaves", "15"]
    assert card == plain  # rendering leaves the card as it was
