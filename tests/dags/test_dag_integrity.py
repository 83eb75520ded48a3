"""Every DAG file imports cleanly and every DAG carries what operators rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseHook, Variable

from catalog_sync.config import load_vendors

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag_and_reads() -> tuple[DagBag, list[str]]:
    """Parse dags/ while recording any Variable or Connection read (there must be none)."""
    reads: list[str] = []
    patch = pytest.MonkeyPatch()

    def variable_get(key: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(f"Variable.get({key!r})")
        raise AssertionError("Variable read while parsing")

    def connection_get(conn_id: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(f"get_connection({conn_id!r})")
        raise AssertionError("Connection read while parsing")

    patch.setattr(Variable, "get", staticmethod(variable_get))
    patch.setattr(BaseHook, "get_connection", classmethod(lambda cls, c: connection_get(c)))
    try:
        bag = DagBag(dag_folder=str(DAGS_DIR))
    finally:
        patch.undo()
    return bag, reads


def test_dag_files_import_without_errors(dagbag_and_reads: tuple[DagBag, list[str]]) -> None:
    bag, _ = dagbag_and_reads
    assert bag.import_errors == {}


def test_parsing_reads_no_variable_or_connection(
    dagbag_and_reads: tuple[DagBag, list[str]],
) -> None:
    _, reads = dagbag_and_reads
    assert reads == []


def test_one_dag_per_configured_vendor(dagbag_and_reads: tuple[DagBag, list[str]]) -> None:
    bag, _ = dagbag_and_reads
    expected = {f"catalog_sync_{name}" for name in load_vendors()}
    assert expected <= set(bag.dag_ids)
    assert "catalog_sync_demo" in bag.dag_ids


def test_every_dag_has_tags_owner_retries_and_docs(
    dagbag_and_reads: tuple[DagBag, list[str]],
) -> None:
    bag, _ = dagbag_and_reads
    assert bag.dags, "no DAGs were loaded"
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert (t.retries or 0) >= 2, f"{dag_id}.{t.task_id} retries={t.retries}"


def test_vendor_dag_wires_the_design_flow(dagbag_and_reads: tuple[DagBag, list[str]]) -> None:
    bag, _ = dagbag_and_reads
    dag = bag.dags["catalog_sync_demo"]
    # One approval task: it passes at once within the caps, so no run shows a skipped twin.
    assert {t.task_id for t in dag.tasks} == {
        "fetch",
        "split",
        "process_chunk",
        "approve_changes",
        "check_deletes",
        "commit_chunk",
        "report",
    }
    assert dag.get_task("approve_changes").upstream_task_ids == {"process_chunk"}
    assert dag.get_task("check_deletes").upstream_task_ids == {"approve_changes", "process_chunk"}
    assert dag.get_task("commit_chunk").pool == "ils_default"
    assert dag.get_task("split").downstream_task_ids == {"process_chunk"}
    assert "commit_chunk" in dag.get_task("process_chunk").downstream_task_ids
    assert dag.max_active_runs == 1
    # The DAG docs tell an operator that notices need Connection smtp_default, and how to add it.
    assert "`smtp_default`" in dag.doc_md and "**no mail is sent**" in dag.doc_md
    assert "var/mail/" in dag.doc_md and "AIRFLOW_CONN_SMTP_DEFAULT" in dag.doc_md


def _architecture_edges() -> set[tuple[str, str]]:
    """The `a -> b` lines of the dag-edges block in docs/architecture.md."""
    page = (DAGS_DIR.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = page.split("```dag-edges\n", 1)[1].split("```", 1)[0]
    pairs = (line.split("->") for line in block.splitlines() if line.strip())
    return {(a.strip(), b.strip()) for a, b in pairs}


def test_vendor_dag_has_exactly_the_tasks_and_edges_of_the_architecture_page(
    dagbag_and_reads: tuple[DagBag, list[str]],
) -> None:
    bag, _ = dagbag_and_reads
    documented = _architecture_edges()
    for name in load_vendors():
        dag = bag.dags[f"catalog_sync_{name}"]
        edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
        assert edges == documented, f"catalog_sync_{name} differs from docs/architecture.md"
        assert {t.task_id for t in dag.tasks} == {x for pair in documented for x in pair}
