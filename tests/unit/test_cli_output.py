"""Output formats of the client (`--output table|json|yaml|ids`) and `-f` documents."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from eventtrigger_client import output

TRIGGER = {
    "id": "01JTRIGGER0000000000000000",
    "name": "café ☕ nightly",
    "config": {"endpoint": "https://example.com/hook", "run_at": "2026-12-01T10:00:00Z"},
    "next_fire_at": None,
    "tags": ["a", "b"],
}


def _emit(fmt: str, value: Any) -> tuple[str, list[str]]:
    calls: list[str] = []

    def table() -> str:
        calls.append("table")
        return "ID  NAME\nx   y"

    def ids() -> list[str]:
        calls.append("ids")
        return ["01A", "01B"]

    out = io.StringIO()
    output.emit(fmt, value, out, table=table, ids=ids)
    return out.getvalue(), calls


def test_formats_are_the_four_the_cli_offers() -> None:
    assert output.FORMATS == ("table", "json", "yaml", "ids")


def test_json_is_the_value_indented_with_non_ascii_kept() -> None:
    text, calls = _emit("json", TRIGGER)
    assert text == json.dumps(TRIGGER, indent=2, ensure_ascii=False) + "\n"
    assert "café ☕" in text
    assert calls == []  # neither the table nor the ids are built for json


def test_yaml_reads_back_as_the_value_in_the_api_order() -> None:
    text, calls = _emit("yaml", TRIGGER)
    assert yaml.safe_load(text) == TRIGGER
    assert text.index("id:") < text.index("name:") < text.index("config:")  # not sorted
    assert "café ☕" in text  # allow_unicode: no \u escapes
    assert calls == []


def test_yaml_has_no_anchors_for_repeated_parts() -> None:
    shared = {"endpoint": "https://example.com"}
    text, _ = _emit("yaml", {"items": [shared, shared]})
    assert "&" not in text and "*id" not in text
    assert yaml.safe_load(text) == {"items": [shared, shared]}


def test_ids_prints_one_id_a_line_and_table_prints_the_table() -> None:
    text, calls = _emit("ids", {"items": []})
    assert text == "01A\n01B\n" and calls == ["ids"]
    text, calls = _emit("table", {"items": []})
    assert text == "ID  NAME\nx   y\n" and calls == ["table"]


def test_an_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="xml"):
        _emit("xml", {})


def test_table_and_json_output_do_not_import_yaml() -> None:
    # A fresh interpreter: this test process has imported yaml already.
    code = (
        "import io, sys\n"
        "import eventtrigger_client.main\n"  # the whole client, as the program loads it
        "from eventtrigger_client import output\n"
        "output.emit('json', {'a': 1}, io.StringIO(), table=str, ids=list)\n"
        "output.emit('table', {'a': 1}, io.StringIO(), table=str, ids=list)\n"
        "output.load_document('{\"a\": 1}', 'x.json')\n"
        "print('yaml' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_load_document_reads_json_and_yaml() -> None:
    assert output.load_document('{"name": "a", "n": [1, 2]}', "t.json") == {
        "name": "a",
        "n": [1, 2],
    }
    doc = "name: nightly\ntype: cron_scheduled\nconfig:\n  cron: '0 3 * * *'\n  retry: {max_attempts: 3}\n"
    assert output.load_document(doc, "t.yaml") == {
        "name": "nightly",
        "type": "cron_scheduled",
        "config": {"cron": "0 3 * * *", "retry": {"max_attempts": 3}},
    }


def test_yaml_times_stay_the_text_written() -> None:
    doc = "config:\n  run_at: 2026-12-01T10:00:00Z\n  day: 2026-12-01\n"
    assert output.load_document(doc, "t.yaml") == {
        "config": {"run_at": "2026-12-01T10:00:00Z", "day": "2026-12-01"}
    }


def test_yaml_output_reads_back_through_load_document() -> None:
    text, _ = _emit("yaml", TRIGGER)
    assert output.load_document(text, "saved.yaml") == TRIGGER


def test_a_parse_error_names_the_file_and_the_line() -> None:
    doc = "name: a\nconfig:\n  endpoint: [unclosed\n  retry: 3\n"
    with pytest.raises(ValueError) as caught:
        output.load_document(doc, "trigger.yaml")
    message = str(caught.value)
    assert message.startswith("trigger.yaml is not valid JSON or YAML at line ")
    line = int(message.split(" at line ")[1].split(",")[0])
    assert 3 <= line <= 5, message


def test_a_parse_error_on_stdin_says_stdin() -> None:
    with pytest.raises(ValueError, match=r"^stdin is not valid JSON or YAML at line 1"):
        output.load_document("{a: [}", "-")


@pytest.mark.parametrize("doc", ["payload: !!binary aGVsbG8=", "rate: .nan", "s: !!set {a}"])
def test_values_json_cannot_carry_are_refused(doc: str) -> None:
    with pytest.raises(ValueError, match=r"^t\.yaml holds a value JSON cannot carry"):
        output.load_document(doc, "t.yaml")


def test_table_and_ids_output_escape_control_characters_json_and_yaml_do_not() -> None:
    value = {"items": [{"id": "01\x1bA", "error": "red\x1b[31m\nline"}]}

    def shown(fmt: str) -> str:
        out = io.StringIO()
        output.emit(
            fmt,
            value,
            out,
            table=lambda: "ID  ERROR\n01\x1bA  red\x1b[31m",
            ids=lambda: ["01\x1bA"],
        )
        return out.getvalue()

    assert shown("table") == "ID  ERROR\n01\\x1bA  red\\x1b[31m\n"
    assert shown("ids") == "01\\x1bA\n"
    assert json.loads(shown("json")) == value  # the API's answer, exactly
    assert yaml.safe_load(shown("yaml")) == value
