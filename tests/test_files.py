"""ctlearn.files: whole-file writes and JSON reads whose errors name the file."""

import json

import pytest

from ctlearn.files import (
    atomic_open,
    atomic_write_text,
    read_json,
    read_json_object,
    temporary_files,
)


def test_a_write_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as f:
        f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert temporary_files(path) == []


def test_atomic_open_refuses_an_appending_mode(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomic_open(tmp_path / "a.txt", "a"):
            pass


def test_read_json_object_returns_the_object(tmp_path):
    path = tmp_path / "s.json"
    atomic_write_text(path, json.dumps({"runs": [1, 2], "x": 3}))
    assert read_json_object(str(path), "runs", list, ValueError, "fix it") == {
        "runs": [1, 2],
        "x": 3,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"runs": [1', r"is not valid JSON \(.*line 1.*\): fix it"),
        ('{"runs": {}}', r"holds no 'runs' array: fix it"),
        ("[1, 2]", r"holds no 'runs' array: fix it"),
        ("\udcff", r"is not valid JSON"),
    ],
)
def test_a_damaged_file_is_refused_naming_it_and_what_to_do(tmp_path, text, message):
    path = tmp_path / "s.json"
    if text == "\udcff":
        path.write_bytes(b"\xff\xfe{")
    else:
        path.write_text(text)

    class Damaged(Exception):
        pass

    with pytest.raises(Damaged, match=message) as info:
        read_json_object(path, "runs", list, Damaged, "fix it")
    assert str(path) in str(info.value)


def test_read_json_reads_any_value(tmp_path):
    path = tmp_path / "v.json"
    path.write_text("[1, 2.5, null]")
    assert read_json(path, ValueError, "") == [1, 2.5, None]


def test_an_unsupported_kind_is_refused(tmp_path):
    path = tmp_path / "v.json"
    path.write_text("{}")
    with pytest.raises(TypeError, match="kind must be one of dict, str, list, got <class 'int'>"):
        read_json_object(path, "n", int, ValueError, "")
