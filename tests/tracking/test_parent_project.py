"""A child run joins its parent's project unless it names another."""

from __future__ import annotations

import loopml


def test_child_started_with_a_parent_id_inherits_the_project(client):
    with client.start_run("parent", project="credit") as parent:
        child = client.start_run("child", parent=parent.id)
        child.end()
        other = client.start_run("other", parent=parent.id[:8], project="elsewhere")
        other.end()
    assert client.get_run(child.id).project == "credit"
    assert client.get_run(child.id).parent_id == parent.id
    assert client.get_run(other.id).project == "elsewhere"
    assert client.start_run("top").record.project == "default"


def test_start_run_with_parent_id_inherits_the_project(client, monkeypatch):
    monkeypatch.setenv("LOOPML_PROJECT", "from-env")
    with client.start_run("parent", project="credit") as parent:
        pass
    with loopml.start_run("child", parent=parent.id, client=client) as child:
        pass
    with loopml.start_run("top", client=client) as top:
        pass
    assert [client.get_run(r.id).project for r in (child, top)] == ["credit", "from-env"]


def test_store_inherits_on_both_backends(store):
    parent = store.runs.create(project="team-a", name="p")
    child = store.runs.create(project=None, name="c", parent_id=parent.id)
    assert child.project == "team-a" and store.runs.get(child.id).project == "team-a"
    assert store.runs.create(project=None, name="t").project == "default"
