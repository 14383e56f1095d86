"""tests/interop/matrix.py, the pure part: junit results → client × capability cells → the
markdown put between the markers of docs/compatibility.md."""

from __future__ import annotations

from pathlib import Path

from tests.interop import matrix
from tests.interop.matrix import GO_CLIENTS, JAVA, MARKERS, Result

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="9">
  <testcase classname="tests.interop.test_go_clients" name="test_franz_roundtrip" time="1.0"/>
  <testcase classname="tests.interop.test_go_clients" name="test_franz_transactions" time="1.0"/>
  <testcase classname="tests.interop.test_go_clients" name="test_franz_transactions_group_session" time="1.0">
    <failure message="boom">AssertionError</failure></testcase>
  <testcase classname="tests.interop.test_go_clients" name="test_sarama_compression_zstd" time="1.0">
    <skipped message="no zstd"/></testcase>
  <testcase classname="tests.interop.test_java_clients" name="test_group_consumer_protocol" time="1.0"/>
  <testcase classname="tests.interop.test_java_clients" name="test_compression[lz4]" time="1.0"/>
  <testcase classname="tests.interop.test_java_clients" name="test_streams_eos" time="1.0"/>
  <testcase classname="tests.integration.test_kcat" name="test_kcat_produce_consume_query[gzip]" time="1.0"/>
  <testcase classname="tests.integration.test_kcat" name="test_kcat_produce_consume_query[none]" time="1.0">
    <error message="teardown">OSError</error></testcase>
  <testcase classname="tests.integration.test_exactly_once" name="test_aiokafka_and_kafka_python_transactions"/>
  <testcase classname="tests.integration.test_zero_copy" name="test_something_else" time="1.0"/>
</testsuite></testsuites>
"""


def test_junit_outcomes() -> None:
    results = matrix.parse_junit(JUNIT)
    assert len(results) == 11
    assert results[0] == Result("test_go_clients", "test_franz_roundtrip", "passed")
    assert {r.name: r.outcome for r in results if r.outcome != "passed"} == {
        "test_franz_transactions_group_session": "failed", "test_sarama_compression_zstd": "skipped",
        "test_kcat_produce_consume_query[none]": "failed"}


def test_names_and_the_legacy_table_map_to_cells() -> None:
    assert matrix.capabilities(Result("test_go_clients", "test_kafkago_group_classic", "passed")) == [
        (GO_CLIENTS["kafkago"], "group_classic")]
    assert matrix.capabilities(Result("test_go_clients", "test_franz_transactions_group_session", "passed")) == [
        (GO_CLIENTS["franz"], "transactions")]
    assert matrix.capabilities(Result("test_java_clients", "test_compression_snappy", "passed")) == [
        (JAVA, "compression_snappy")]
    assert matrix.capabilities(Result("test_java_clients", "test_streams_eos", "passed")) == [(JAVA, "transactions")]
    assert matrix.capabilities(Result("test_kcat", "test_kcat_produce_consume_query[none]", "passed")) == [
        (matrix.KCAT, "roundtrip")]
    assert matrix.capabilities(Result("test_exactly_once", "test_aiokafka_and_kafka_python_transactions",
                                      "passed")) == [(matrix.AIOKAFKA, "transactions"),
                                                     (matrix.KAFKA_PYTHON, "transactions")]
    # not a client capability test, or no capability in the name
    assert matrix.capabilities(Result("test_zero_copy", "test_something_else", "passed")) == []
    assert matrix.capabilities(Result("test_go_clients", "test_franz_something", "passed")) == []


def test_cells_pass_only_when_every_test_behind_them_passed() -> None:
    cells = matrix.matrix(matrix.parse_junit(JUNIT))
    franz = GO_CLIENTS["franz"]
    assert matrix.cell(cells[franz, "produce"]) == matrix.cell(cells[franz, "consume"]) == "✅"
    assert matrix.cell(cells[franz, "transactions"]) == "❌ fails"  # one of its two tests failed
    assert matrix.cell(cells[GO_CLIENTS["sarama"], "zstd"]) == "skipped"
    assert matrix.cell(cells[JAVA, "lz4"]) == matrix.cell(cells[JAVA, "group (KIP-848)"]) == "✅"
    assert matrix.cell(cells[matrix.KCAT, "gzip"]) == "✅"
    assert matrix.cell(cells[matrix.KCAT, "produce"]) == "❌ fails"  # the [none] run errored
    assert matrix.cell(cells.get((franz, "admin"))) == "—"


def test_rendered_table_has_a_row_per_client_and_footnotes_what_clients_lack() -> None:
    text = matrix.render(matrix.matrix(matrix.parse_junit(JUNIT)), ["build/junit/interop.xml"])
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| client")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(matrix.ROWS)
    kafkago = next(r for r in rows if r.startswith(f"| {GO_CLIENTS['kafkago']} "))
    cells = kafkago.strip("|").split(" | ")[1:]
    columns = list(matrix.COLUMNS)
    assert cells[columns.index("idempotence")].startswith("n/a [")
    assert "segmentio/kafka-go has no idempotent producer" in text
    assert "`build/junit/interop.xml`: 10 tests (7 passed, 2 failed, 1 skipped)" in text


def test_splice_replaces_between_the_markers_and_keeps_the_rest(tmp_path: Path) -> None:
    accepted = "# Accepted differences with Apache Kafka\n\n| test | reason |\n|---|---|\n"
    first = matrix.splice(accepted, "# Client compatibility matrix\n\nold\n")
    assert first.startswith(MARKERS[0]) and first.endswith(accepted)
    second = matrix.splice(first, "# Client compatibility matrix\n\nnew\n")
    assert "old" not in second and "new" in second and second.endswith(accepted)
    assert second.count(MARKERS[0]) == second.count(MARKERS[1]) == 1
    assert matrix.splice(second, "# Client compatibility matrix\n\nnew\n") == second  # stable

    results = tmp_path / "r.xml"
    results.write_text(JUNIT)
    doc = tmp_path / "compatibility.md"
    doc.write_text(accepted)
    assert matrix.main(["--write", str(doc), str(results)]) == 0
    assert doc.read_text().endswith(accepted) and "| IBM/sarama 1.61 |" in doc.read_text()
    assert matrix.main([str(tmp_path / "missing.xml")]) == 1
    assert matrix.main([]) == 1


def test_every_test_the_legacy_table_names_exists() -> None:
    """A renamed or removed client test must not leave its cells silently empty."""
    integration = Path(__file__).parents[1] / "integration"
    for module, name in [*matrix.LEGACY_TESTS, *matrix.LEGACY_TESTS_ALSO]:
        source = (integration / f"{module}.py").read_text()
        assert f"def {name.removesuffix('[*]')}(" in source, f"{module}.py has no {name}"
