"""`predict(runtime=...)` / `zoo predict --runtime`: the runtime an export runs in, and `--timing`'s median."""

import json
import sys

import numpy as np
import pytest
from export_helpers import CLASS_NAMES, VOCABULARY, images, png_file

import zoo
from zoo.cli.main import main
from zoo.export import FORMAT_RUNTIMES, RUNTIMES, predict
from zoo.export.runtimes import resolve_runtime

TEXT = "is it even?"


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    image = images(1, seed=7)
    return png_file(tmp_path_factory.mktemp("png") / "digit.png", image[0]), image


@pytest.fixture(scope="module")
def onnx_dir(tiny_model, tmp_path_factory):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("onnx") / "onnx"
    zoo.export_model(tiny_model, path, "onnx", vocabulary=VOCABULARY, class_names=CLASS_NAMES)
    return path


def _cli(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.mark.slow
def test_onnx_through_onnxruntime_answers_as_the_saved_model(saved_model_dir, onnx_dir, digit_png, capsys):
    png, image = digit_png
    served = predict(saved_model_dir, image=image[0], text=TEXT, runtime="tensorflow")
    for runtime in ("onnxruntime", "auto"):
        answer = predict(onnx_dir, image=image[0], text=TEXT, runtime=runtime)
        assert (answer["answer"], answer["index"]) == (served["answer"], served["index"])
        np.testing.assert_allclose([answer["probabilities"][c] for c in CLASS_NAMES],
                                   [served["probabilities"][c] for c in CLASS_NAMES], atol=1e-5)
    code, out, _ = _cli(capsys, ["predict", str(onnx_dir), "--image", str(png), "--text", TEXT,
                                 "--runtime", "onnxruntime", "--json"])
    assert code == 0 and json.loads(out)["answer"] == served["answer"]
    code, _, err = _cli(capsys, ["predict", str(onnx_dir), "--image", str(png), "--text", TEXT, "--runtime", "tensorflow"])
    assert code == 2 and f"--runtime 'tensorflow' cannot run {str(onnx_dir)!r}, an export of format 'onnx'" in err[0]


@pytest.mark.parametrize(("runtime", "own"), [("onnxruntime", "tensorflow"), ("litert", "tensorflow")])
def test_a_runtime_that_cannot_run_the_format_is_refused_naming_both(saved_model_dir, digit_png, runtime, own, capsys):
    png, image = digit_png
    code, out, err = _cli(capsys, ["predict", str(saved_model_dir), "--image", str(png), "--text", TEXT,
                                   "--runtime", runtime])
    assert code == 2 and out == "" and len(err) == 1
    assert f"--runtime {runtime!r} cannot run {str(saved_model_dir)!r}, an export of format 'tf_saved_model'" in err[0]
    assert f"use --runtime {own!r} or --runtime 'auto'" in err[0]
    with pytest.raises(ValueError, match=rf"runtime='{runtime}' cannot run .*an export of format 'tf_saved_model'"):
        predict(saved_model_dir, image=image[0], text=TEXT, runtime=runtime)


@pytest.mark.slow
def test_a_missing_runtime_package_exits_1_naming_it(onnx_dir, digit_png, monkeypatch, capsys):
    png, _ = digit_png
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    code, _, err = _cli(capsys, ["predict", str(onnx_dir), "--image", str(png), "--text", TEXT])
    assert code == 1 and len(err) == 1
    assert "running an ONNX export in onnxruntime needs onnxruntime: pip install onnxruntime" in err[0]


@pytest.mark.slow
def test_timing_prints_the_median_latency(saved_model_dir, digit_png, capsys):
    png, image = digit_png
    code, out, _ = _cli(capsys, ["predict", str(saved_model_dir), "--image", str(png), "--text", TEXT, "--timing", "5"])
    assert code == 0
    line = out.strip().splitlines()[-1]
    assert line.startswith("latency: median ") and " ms over 5 runs (tensorflow, batch 1, after 3 warm-up calls)" in line
    assert float(line.split()[2]) > 0
    timed = predict(saved_model_dir, image=image[0], text=TEXT, timing_runs=4)
    assert timed["latency_ms"]["runs"] == 4 and timed["latency_ms"]["runtime"] == "tensorflow"
    assert timed["latency_ms"]["median"] > 0
    assert "latency_ms" not in predict(saved_model_dir, image=image[0], text=TEXT)
    code, _, err = _cli(capsys, ["predict", str(saved_model_dir), "--image", str(png), "--text", TEXT, "--timing", "-1"])
    assert code == 2 and "--timing -1: expected a number of runs >= 0" in err[0]
    with pytest.raises(ValueError, match=r"timing_runs=-2: expected a number of runs >= 0"):
        predict(saved_model_dir, image=image[0], text=TEXT, timing_runs=-2)


def test_every_format_has_its_runtime_and_auto_picks_it():
    assert set(FORMAT_RUNTIMES) == set(zoo.export.FORMATS)
    assert set(FORMAT_RUNTIMES.values()) | {"auto"} == set(RUNTIMES)
    for fmt, runtime in FORMAT_RUNTIMES.items():
        assert resolve_runtime(fmt) == resolve_runtime(fmt, runtime) == runtime
    with pytest.raises(ValueError, match=r"runtime='jax': expected one of auto, tensorflow, onnxruntime, litert"):
        resolve_runtime("onnx", "jax")
