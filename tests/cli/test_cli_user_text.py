"""User text in every list/show command: markup shown literally, control characters escaped.

A run named ``lr[/]0.1`` used to crash `loopml runs list` (rich markup), ``bert[base]`` showed
as ``bert``, and ``"\\x1b[2J"`` in a param cleared the user's screen. Each command runs as a
real process; the expected text is written by hand, not by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopml.tracking import TrackingClient
from loopml.workspace import Workspace

# Stored text -> how a terminal view must show it.
SHOWN = {
    "lr[/]0.1": "lr[/]0.1",
    "bert[base]": "bert[base]",
    ":smile: evil\x1b[31mRED\x07\r": ":smile: evil\\x1b[31mRED\\x07\\r",
    "proj[/]a": "proj[/]a",
    "k[b]": "k[b]",
    "v[/]": "v[/]",
    "ctl\x1b[2J": "ctl\\x1b[2J",
    "\x1b]0;pwn\x07": "\\x1b]0;pwn\\x07",
    "auc[red]": "auc[red]",
    "m\x1b[1m": "m\\x1b[1m",
    "t[/]": "t[/]",
    "x\u202ey": "x\\u202ey",
    "plots[/]/r\x1b[0m.png": "plots[/]/r\\x1b[0m.png",
    "ValueError: bad [/] \x1b[31mvalue": "ValueError: bad [/] \\x1b[31mvalue",
}
RAW_CONTROL = ("\x1b", "\x07", "\r", "\u202e")


def assert_safe(text: str) -> None:
    for char in RAW_CONTROL:
        assert char not in text, f"raw {char!r} reached the terminal"


@pytest.fixture(scope="module")
def runs_home(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("user_text") / "ws"
    client = TrackingClient.from_workspace(Workspace.from_env(home, env={}))
    with client.start_run("lr[/]0.1", project="proj[/]a") as run:
        run.log_params({"k[b]": "v[/]", "ctl\x1b[2J": "\x1b]0;pwn\x07"})
        run.log_metric("auc[red]", 0.5)
        run.log_metric("m\x1b[1m", 0.25)
        run.set_tag("t[/]", "x\u202ey")
        run.log_artifact(b"png", name="plots[/]/r\x1b[0m.png")
    first = run.id
    with client.start_run(":smile: evil\x1b[31mRED\x07\r") as run:
        run.log_params({"k[b]": "other"})
        run.log_metric("auc[red]", 0.75)
    second = run.id
    with pytest.raises(ValueError), client.start_run("bert[base]") as run:
        raise ValueError("bad [/] \x1b[31mvalue")
    failed = run.id
    client.close()
    return home, {"first": first, "second": second, "failed": failed}


def check(result, *stored: str) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_safe(result.stdout)
    for text in stored:
        assert SHOWN[text] in result.stdout, (SHOWN[text], result.stdout)


def test_runs_list_shows_names_literally(cli, runs_home):
    home, _ = runs_home
    check(cli("runs", "list", home=home), "lr[/]0.1", "bert[base]",
          ":smile: evil\x1b[31mRED\x07\r", "proj[/]a", "auc[red]", "m\x1b[1m")


def test_runs_show_escapes_every_section(cli, runs_home):
    home, ids = runs_home
    check(cli("runs", "show", ids["first"], home=home), "lr[/]0.1", "proj[/]a", "k[b]", "v[/]",
          "ctl\x1b[2J", "\x1b]0;pwn\x07", "auc[red]", "m\x1b[1m", "t[/]", "x\u202ey",
          "plots[/]/r\x1b[0m.png")
    check(cli("runs", "show", ids["failed"], home=home), "bert[base]",
          "ValueError: bad [/] \x1b[31mvalue")
    check(cli("runs", "show", ids["second"], home=home), ":smile: evil\x1b[31mRED\x07\r")


def test_runs_compare_and_metric(cli, runs_home):
    home, ids = runs_home
    check(cli("runs", "compare", ids["first"], ids["second"], home=home), "lr[/]0.1",
          ":smile: evil\x1b[31mRED\x07\r", "k[b]", "v[/]", "ctl\x1b[2J", "auc[red]")
    metric = cli("runs", "metric", ids["first"], "auc[red]", home=home)
    check(metric, "auc[red]")
    assert "auc[red]: 1 point(s)" in metric.stdout
    check(cli("runs", "metric", ids["first"], "m\x1b[1m", home=home), "m\x1b[1m")


def test_json_keeps_the_stored_text_and_escapes_it(cli, runs_home):
    home, ids = runs_home
    listed = cli("runs", "list", "--json", home=home)
    assert_safe(listed.stdout)
    names = {r["name"] for r in json.loads(listed.stdout)}
    assert names == {"lr[/]0.1", ":smile: evil\x1b[31mRED\x07\r", "bert[base]"}
    shown = cli("runs", "show", ids["first"], "--json", home=home)
    assert_safe(shown.stdout)
    detail = json.loads(shown.stdout)
    assert detail["params"] == {"k[b]": "v[/]", "ctl\x1b[2J": "\x1b]0;pwn\x07"}
    assert detail["tags"] == {"t[/]": "x\u202ey"}
    assert [a["name"] for a in detail["artifacts"]] == ["plots[/]/r\x1b[0m.png"]
    compared = cli("runs", "compare", ids["first"], ids["second"], "--json", home=home)
    assert_safe(compared.stdout)
    assert json.loads(compared.stdout)["params"]["k[b]"] == ["v[/]", "other"]


# -- datasets: column names, values and file paths come from the data file ------------------

COLUMNS = ["bert[base]", "lr[/]0.1", "esc\x1b[31mX", "y"]
COLUMNS_SHOWN = ["bert[base]", "lr[/]0.1", "esc\\x1b[31mX", "y"]


@pytest.fixture(scope="module")
def data_home(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("user_data")
    folder = root / "in[bold]"
    folder.mkdir()
    csv = folder / "x[red].csv"
    rows = [",".join(f'"{c}"' for c in COLUMNS)]
    values = ["q\x1b[2J", "[/]b", ":smile:"]
    for i in range(20):
        rows.append(f"[red]a{i % 5},{i % 4 + 1},{values[i % 3]},{i % 2}")
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "ws", csv


def test_data_commands_show_columns_and_values_literally(cli, data_home):
    home, csv = data_home
    added = cli("data", "add", str(csv), "--name", "weird", home=home)
    assert added.returncode == 0, added.stderr
    assert_safe(added.stdout)
    assert "added weird@1" in added.stdout
    listed = cli("data", "list", home=home)
    assert listed.returncode == 0, listed.stderr
    assert "in[bold]/x[red].csv" in listed.stdout
    split = cli("data", "split", "weird", "--method", "group", "--by", "bert[base]", home=home)
    assert split.returncode == 0, split.stderr
    shown = cli("data", "show", "weird", home=home)
    assert shown.returncode == 0, shown.stderr
    assert_safe(shown.stdout)
    for column in COLUMNS_SHOWN:
        assert column in shown.stdout
    for value in ("[/]b", "[red]a", ":smile:", "q\\x1b[2J"):
        assert value in shown.stdout, value
    assert "in[bold]/x[red].csv" in shown.stdout
    assert "group by bert[base]" in shown.stdout
    contract = cli("data", "contract", "weird", home=home)
    assert contract.returncode == 0, contract.stderr
    assert_safe(contract.stdout)
    assert "bert[base]:" in contract.stdout and "lr[/]0.1:" in contract.stdout


def test_data_validate_names_bad_columns_literally(cli, data_home, tmp_path):
    home, csv = data_home
    if cli("data", "list", home=home).stdout.count("weird") == 0:
        assert cli("data", "add", str(csv), "--name", "weird", home=home).returncode == 0
    bad = tmp_path / "bad[bold].csv"
    bad.write_text(",".join(f'"{c}"' for c in COLUMNS) + "\n"
                   "[/]z,99,,1\n[red]a,1,,0\n", encoding="utf-8")
    result = cli("data", "validate", str(bad), "--against", "weird", home=home)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert_safe(result.stdout)
    assert "bad[bold].csv" in result.stdout
    assert "lr[/]0.1" in result.stdout  # above the contract's max
    assert "esc\\x1b[31mX" in result.stdout  # missing values in a column that had none
