"""Ingest hardening: RFC 4180 line breaks, SQL batches of mixed types, encodings, matplotlib
state, the PII key, and numbers the `data` commands must range-check."""

from __future__ import annotations

import sqlite3
import subprocess

import pandas as pd
import pytest

from loopml.data import Catalog, SplitSpec, resolve_source
from loopml.data import sources as sources_module
from loopml.data.catalog import workspace_pii_key
from loopml.errors import InvalidInput, NotFound
from loopml.workspace import Workspace
from loopml_cli import run_loopml as loopml


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- 3. quoted line breaks -------------------------------------------------------------------
def test_quoted_line_breaks_are_read_like_pandas(catalog, tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('id,note,score\n1,"first line\nsecond line",3.5\n2,plain,4\n'
                    '3,"say ""hi""\r\nthen go",5\n4,"ends with a break\n",6\n', encoding="utf-8")
    version = catalog.add(resolve_source(path), name="notes").version
    assert version.num_rows == 4
    pd.testing.assert_frame_equal(catalog.load(version), pd.read_csv(path), check_dtype=False)


def test_quoted_line_breaks_in_a_later_block(catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(sources_module, "BLOCK_BYTES", 1024)
    rows = "".join(f'{i},"note {i}\nline two",{i}\n' for i in range(400))
    path = tmp_path / "long.csv"
    path.write_text("id,note,n\n" + rows, encoding="utf-8")
    frame = catalog.load(catalog.add(resolve_source(path), name="long").version)
    pd.testing.assert_frame_equal(frame, pd.read_csv(path), check_dtype=False)


@pytest.mark.parametrize(("content", "match"), [
    ('a,b\n1,"never closed\n2,3\n', "column 'b' is never closed"),  # swallows the rest
    ('a,b,c\n1,"never closed,3\n2,x,4\n', "Expected 3 columns, got 2"),  # rows merge
])
def test_a_truly_unterminated_quote_is_refused(catalog, tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=match) as info:
        catalog.add(resolve_source(path), name="bad")
    assert "bad.csv" in str(info.value) and "quote" in str(info.value)
    assert "never closed,3" not in str(info.value)  # the row itself is not quoted
    with pytest.raises(NotFound):
        catalog.get("bad")


# -- 6. SQL sources ---------------------------------------------------------------------------
def test_sql_first_batch_of_mixed_types_is_one_clear_error(catalog, tmp_path):
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:  # SQLite lets a column hold any type per row
        conn.execute("create table t (id integer, code)")
        conn.executemany("insert into t values (?, ?)", [(1, 10), (2, "x-20"), (3, 30)])
    source = resolve_source(sql="select * from t", url=f"sqlite:///{db}")
    with pytest.raises(InvalidInput, match=r"column 'code' mixes value types \(int, str\)"
                       r".*CAST\(code AS TEXT\)") as info:
        catalog.add(source, name="sql")
    assert "x-20" not in str(info.value)
    with pytest.raises(NotFound):
        catalog.get("sql")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_naming_the_option(url):
    with pytest.raises(InvalidInput, match=r"--url .* in-memory SQLite.*sqlite:///path"):
        resolve_source(sql="select 1", url=url)


# -- 8. matplotlib state ----------------------------------------------------------------------
def test_ingest_leaves_the_matplotlib_backend_and_figures_alone(catalog, credit_csv):
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        import matplotlib.pyplot as plt

        before = plt.get_fignums()
        version = catalog.add(resolve_source(credit_csv), name="plots").version
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == before
        assert "data:image/png;base64" in catalog.report_html(version)  # plots still drawn
    finally:
        matplotlib.use(previous)


# -- 17. the PII key --------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["a", "short-key-15byte"[:15], "   padded   "])
def test_a_short_pii_key_in_the_environment_is_refused(tmp_path, monkeypatch, key):
    monkeypatch.setenv("LOOPML_PII_KEY", key)
    with pytest.raises(InvalidInput, match=r"LOOPML_PII_KEY is \d+ bytes; .* at least 16"):
        workspace_pii_key(Workspace.from_env(tmp_path / "ws", env={}))
    monkeypatch.setenv("LOOPML_PII_KEY", "k" * 16)
    assert workspace_pii_key(Workspace.from_env(tmp_path / "ws", env={})) == b"k" * 16


# -- 19. numbers the commands check -----------------------------------------------------------
@pytest.mark.parametrize(("change", "match"), [
    ({"seed": -1}, "--seed"), ({"seed": 2**70}, "--seed"), ({"seed": True}, "--seed"),
    ({"fractions": (float("nan"), 0.5, 0.5)}, "--fractions"),
    ({"fractions": (1.5, -0.25, -0.25)}, "--fractions"),
    ({"fractions": (float("inf"), 0.0, 0.0)}, "--fractions"),
])
def test_split_spec_range_checks(change, match):
    with pytest.raises(InvalidInput, match=match):
        SplitSpec(**change).check(["a"])


@pytest.mark.slow
def test_data_commands_refuse_bad_numbers_in_one_line(tmp_path, credit_csv):
    home = tmp_path / "ws"
    assert loopml("data", "add", str(credit_csv), "--name", "credit", home=home).returncode == 0
    cases = [
        (("data", "split", "credit", "--seed", "-1"), ("--seed", "-1", "0 to 2147483647")),
        (("data", "split", "credit", "--seed", str(2**70)), ("--seed", "0 to 2147483647")),
        (("data", "split", "credit", "--fractions", "nan,0.5,0.5"), ("--fractions",
                                                                     "add up to 1")),
        (("data", "split", "credit", "--fractions", "2,-0.5,-0.5"), ("--fractions",
                                                                     "between 0 and 1")),
        (("data", "add", "--name", "m", "--sql", "select 1 as x", "--url", "sqlite://"),
         ("--url", "in-memory SQLite", "sqlite:///path/to/file.db")),
        (("data", "show", "credit", "--html", str(tmp_path)), ("is a folder",)),
        (("data", "show", "credit", "--html", str(tmp_path / "no" / "r.html")),
         ("does not exist",)),
    ]
    for args, needles in cases:
        assert_one_line_error(loopml(*args, home=home), *needles)
    # a write to an existing dataset on a mistyped home creates nothing
    typo = tmp_path / "typo"
    assert_one_line_error(loopml("data", "split", "credit", home=typo), "no workspace at")
    assert not typo.exists()


# -- 7. validate with an encoding -------------------------------------------------------------
@pytest.mark.slow
def test_validate_takes_encoding_and_null_values_like_add(tmp_path):
    home = tmp_path / "ws"
    rows = "".join(f"José{i},Zürich,{i}\n" for i in range(30))
    first, batch = tmp_path / "first.csv", tmp_path / "batch.csv"
    first.write_bytes(("name,city,n\n" + rows + "Ana,Zürich,\n").encode("latin-1"))
    batch.write_bytes(("name,city,n\n" + rows + "Zoë,Zürich,-\n").encode("latin-1"))
    added = loopml("data", "add", str(first), "--name", "people", "--encoding", "latin-1",
                   home=home)
    assert added.returncode == 0, added.stderr

    wrong = loopml("data", "validate", str(batch), "--against", "people", home=home)
    line = assert_one_line_error(wrong, "batch.csv", "encoding", "--encoding")
    assert "type" not in line  # an encoding error, not blamed on a type change

    checked = loopml("data", "validate", str(batch), "--against", "people", "--encoding",
                     "latin-1", "--null-values", "-", "--json", home=home)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert '"passed": true' in checked.stdout
    failing = loopml("data", "validate", str(batch), "--against", "people", "--encoding",
                     "latin-1", "--json", home=home)
    assert failing.returncode == 1 and '"rule": "type"' in failing.stdout  # '-' is text


def test_report_html_is_written_per_project_by_the_cli(tmp_path, credit_csv):
    """`data add` in two projects, same dataset name: two report files, neither overwritten."""
    home = tmp_path / "ws"
    small = tmp_path / "small.csv"
    pd.read_csv(credit_csv).head(50).to_csv(small, index=False)
    a = loopml("data", "add", str(credit_csv), "--name", "shared", "--project", "teamA",
               "--json", home=home)
    b = loopml("data", "add", str(small), "--name", "shared", "--project", "teamB",
               "--json", home=home)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    report_a = home / "reports" / "teamA" / "data-shared-1.html"
    report_b = home / "reports" / "teamB" / "data-shared-1.html"
    assert str(report_a) in a.stdout and str(report_b) in b.stdout
    catalog = Catalog.from_workspace(Workspace.from_env(home, env={}))
    assert report_a.read_text() == catalog.report_html(catalog.get("shared", project="teamA"))
    assert report_b.read_text() == catalog.report_html(catalog.get("shared", project="teamB"))


def test_a_source_path_with_control_characters_keeps_the_contract_readable(tmp_path):
    """The contract's header names the source: a line break or escape in it must stay a comment."""
    from loopml.data.contract import from_yaml, to_yaml

    folder = tmp_path / "odd\nname\x1b[31m"
    folder.mkdir()
    path = folder / "data.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(path, index=False)
    catalog = Catalog.from_workspace(Workspace.from_env(tmp_path / "ws", env={}))
    catalog.add(resolve_source(path), name="odd")
    stored = catalog.contract_yaml("odd")  # written at ingest, naming the source
    assert "\x1b" not in stored and list(catalog.contract("odd").columns) == ["a", "b"]
    text = to_yaml(catalog.contract("odd"), origin=str(path))
    assert list(from_yaml(text, origin="contract.yaml").columns) == ["a", "b"]


def test_column_names_that_differ_only_in_case_are_refused(tmp_path):
    """DuckDB matches names case-insensitively: 'A' and 'a' would read one another's values."""
    path = tmp_path / "case.csv"
    path.write_text("A,a,y\n1,100,x\n2,200,y\n3,300,x\n")
    catalog = Catalog.from_workspace(Workspace.from_env(tmp_path / "ws", env={}))
    with pytest.raises(InvalidInput, match="'A' and 'a' differ only in case"):
        catalog.add(resolve_source(path), name="case")


@pytest.mark.parametrize(("text", "rows"), [
    # a literal quote in an unquoted value, then a legal multi-line last value: accepted
    ('id,h,note\n1,5 foot 11",plain\n2,6 foot,"multi\nline"\n', 2),
    # the same stray quote, then a quote never closed: refused (counting quotes said "closed")
    ('id,h,note\n1,5 foot 11",a\n2,x,"open\n3,y,z\n4,w,v\n', None),
])
def test_a_stray_literal_quote_does_not_fool_the_unterminated_quote_check(tmp_path, text,
                                                                          rows):
    path = tmp_path / "q.csv"
    path.write_text(text)
    catalog = Catalog.from_workspace(Workspace.from_env(tmp_path / "ws", env={}))
    if rows is None:
        with pytest.raises(InvalidInput, match="'note' is never closed"):
            catalog.add(resolve_source(path), name="q")
    else:
        assert catalog.add(resolve_source(path), name="q").version.num_rows == rows


def test_validate_refuses_an_unterminated_quote_too(tmp_path):
    """Validation would otherwise check fewer rows than the file holds, and pass."""
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("id,note\n1,a\n2,b\n3,c\n")
    bad.write_text('id,note\n1,a\n2,"open\n3,c\n')
    catalog = Catalog.from_workspace(Workspace.from_env(tmp_path / "ws", env={}))
    catalog.add(resolve_source(good), name="notes")
    with pytest.raises(InvalidInput, match="'note' is never closed"):
        catalog.validate(resolve_source(bad), against="notes")


def test_a_file_with_infinities_and_nan_passes_its_own_contract(tmp_path):
    """The profile counts NaN and infinities as missing; validation must judge them the same."""
    path = tmp_path / "inf.csv"
    path.write_text("x,y\ninf,1\n1.5,2\n-inf,3\nnan,4\n2.5,5\n")
    catalog = Catalog.from_workspace(Workspace.from_env(tmp_path / "ws", env={}))
    catalog.add(resolve_source(path), name="inf")
    assert catalog.validate(resolve_source(path), against="inf").passed
    strict = tmp_path / "strict.csv"
    strict.write_text("x,y\n1.5,1\n2.5,5\n")
    catalog.add(resolve_source(strict), name="strict")  # x: never missing, 1.5 to 2.5
    report = catalog.validate(resolve_source(path), against="strict")
    assert {(v.column, v.rule, v.rows) for v in report.violations} == {("x", "nullable", 3)}
