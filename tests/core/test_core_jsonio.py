"""The one JSON writer: atomic, strict, with the usual permissions."""

import json
import os

import pytest

from zoo.core.jsonio import read_json, to_json, write_json


def test_write_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_json(target, {"b": 1, "a": [1.5]})
    assert target.read_text().index('"a"') < target.read_text().index('"b"'), "keys sorted by default"
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(target.parent) == ["metrics.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "the usual permissions, not mkstemp's 0600"


def test_order_kept_when_asked(tmp_path):
    target = tmp_path / "card.json"
    write_json(target, {"b": 1, "a": 2}, sort_keys=False)
    assert list(json.loads(target.read_text())) == ["b", "a"]


@pytest.mark.parametrize("bad, error", [({"a": object()}, TypeError), ({"a": float("nan")}, ValueError)])
def test_failed_write_keeps_the_old_file(tmp_path, bad, error):
    target = tmp_path / "config.json"
    write_json(target, {"a": 1})
    with pytest.raises(error):
        write_json(target, bad)
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["config.json"]


def test_to_json_converts_what_json_cannot_hold(tmp_path):
    import numpy as np

    value = to_json({1: (np.float32(0.5), float("inf")), "x": object})
    assert value == {"1": [0.5, None], "x": repr(object)}
    write_json(tmp_path / "ok.json", value)


def test_read_json_names_a_damaged_file(tmp_path):
    target = tmp_path / "config.json"
    target.write_text('{"a": 1')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        read_json(target)
