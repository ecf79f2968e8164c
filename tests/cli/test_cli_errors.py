"""Every subcommand: bad input exits 2 with one line and touches nothing; the environment failing exits 1
with one line naming the file; an interrupt exits 130; a traceback only with --verbose."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from zoo.cli import main as cli
from zoo.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def snapshot(root) -> dict:
    """Every path under `root` with its kind, size, mtime and content hash."""
    state = {}
    for directory, folders, files in os.walk(root):
        for name in folders:
            path = os.path.join(directory, name)
            state[os.path.relpath(path, root)] = ("dir", os.stat(path).st_mtime_ns)
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            stat = os.stat(path)
            state[os.path.relpath(path, root)] = ("file", stat.st_size, stat.st_mtime_ns, digest)
    return state


def run_cli(argv, capsys):
    """Runs `main(argv)`; returns (exit code, stdout, stderr lines)."""
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding a user's file and folder that no failed command may touch."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's file\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.bin").write_bytes(b"\x00\x01")
    return tmp_path


BAD_INPUT = [
    # zoo itself: usage errors are one line too, not the usage block.
    ([], "zoo: error: the following arguments are required: COMMAND"),
    (["frobnicate"], "zoo: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["--bogus", "list"], "zoo: error: unrecognized arguments: --bogus"),
    (["list", "nope*"], "zoo list: error: no model matches 'nope*'"),
    (["list", "a", "b"], "zoo: error: unrecognized arguments: b"),
    (["describe", "nonsense"], "zoo describe: error: Unknown model 'nonsense'."),
    (["describe", "cnn_lstm_concatt"], "Did you mean 'cnn_lstm_concat'"),
    (["describe", "cnn_seed", "--set", "foo=1"], "Unknown hyperparameter 'foo'=1"),
    (["describe", "cnn_seed", "--set", "image_shape=(28, 28)"], "Invalid length for hyperparameter image_shape"),
    (["describe", "cnn_lstm_concat", "--set", "task='foo'"], "Invalid value for hyperparameter task='foo'"),
    (["build"], "zoo build: error: the following arguments are required: name"),
    (["build", "cnn_seed", "--set", "num_classes"], "--set 'num_classes': expected KEY=VALUE"),
    (["build", "cnn_seed", "--plot", "diagram.txt"], "ending in .png"),
    (["build", "cnn_seed", "--plot", "missing_dir/m.png"], "does not exist"),
    (["train", "cnn_lstm_concat", "--out", "run"], "zoo train: error: the following arguments are required: --data"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--set", "foo=1"], "Unknown hyperparameter 'foo'"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--train-split", "trian"],
     "--train-split: Unknown split 'trian'. Did you mean 'train'?"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--train-split", "train[:abc]"],
     "malformed slice '[:abc]'"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--validation-split", "valdation"],
     "Did you mean 'validation'?"),
    (["train", "cnn_lstm_concat", "--data", "vqq", "--out", "run"], "--data 'vqq': unknown data config. Did you mean 'vqa'?"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--epochs", "0"], "--epochs=0: expected an integer >= 1"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--batch-size", "0"], "--batch-size=0"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--lr", "-1"], "--lr=-1.0"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--keep-checkpoints", "0"], "--keep-checkpoints=0"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--warmup-steps", "5"],
     "--warmup-steps=5 needs --lr-schedule='cosine'"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--max-length", "0"], "--max-length 0"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--batch-size", "x"],
     "zoo train: error: argument --batch-size: invalid int value: 'x'"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--strategy", "gpu"], "invalid choice: 'gpu'"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "notes.txt"], "--out 'notes.txt' is a file"),
    (["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--source-dir", "nowhere"],
     "--source-dir 'nowhere' does not exist"),
    (["train", "no_such_model", "--data", "vqa", "--out", "run"], "Unknown model 'no_such_model'"),
    (["export", "no_run", "--out", "x"], "Run directory 'no_run' does not exist"),
    (["export", "folder", "--out", "x"], "has no model.keras"),
    (["export", "folder", "--out", "notes.txt", "--overwrite"], "--out 'notes.txt' is a file"),
    (["export", "folder", "--out", "x", "--format", "pb"], "argument --format: invalid choice: 'pb'"),
    (["export", "folder", "--out", "x", "--max-text-bytes", "0"], "--max-text-bytes 0"),
    (["predict", "folder", "--text", "x"], "is not a zoo export"),
    (["predict", "folder", "--top", "0"], "--top 0: expected a positive number"),
    (["demo", "--seeds", "0"], "--seeds 0: expected a positive number of seeds"),
    (["demo", "--batch-size", "0"], "--batch-size 0: expected a positive number"),
    (["demo", "--quick", "--full"], "zoo demo: error: argument --full: not allowed with argument --quick"),
    (["demo", "--quick", "--mnist-dir", "nowhere"], "--mnist-dir 'nowhere' does not exist"),
    (["demo", "--quick", "--out", "notes.txt"], "--out 'notes.txt' exists and is not a directory"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=[" ".join(a) or "(none)" for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(argv, message, workdir, capsys):
    before = snapshot(workdir)
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (out, err)
    assert len(err) == 1, err
    assert message in err[0]
    assert err[0].startswith("zoo")
    assert "Traceback" not in err[0]
    assert snapshot(workdir) == before


def test_data_configs_in_help_are_the_pipelines():
    from zoo.cli.train_cmd import DATA_CONFIGS_HELP
    from zoo.data.pipeline import CONFIGS

    assert tuple(DATA_CONFIGS_HELP) == tuple(CONFIGS)


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("zoo ")
    assert main(["train", "--help"]) == 0
    assert "usage: zoo train" in capsys.readouterr().out


def test_train_help_shows_every_default_from_train_config(capsys):
    from zoo.training.config import TrainConfig

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split("options:", 1)[1].split())
    config = TrainConfig()
    for flag, value in [("--epochs", config.epochs), ("--batch-size", config.batch_size),
                        ("--optimizer", config.optimizer), ("--lr", config.learning_rate),
                        ("--lr-schedule", config.lr_schedule), ("--checkpoint-every", config.checkpoint_every),
                        ("--keep-checkpoints", config.keep_checkpoints), ("--strategy", config.strategy),
                        ("--warmup-steps", config.warmup_steps), ("--steps-per-execution", config.steps_per_execution)]:
        start = text.index(flag + " ")
        assert f"(default {value})" in text[start:start + 400], flag
    assert "(default validation)" in text and "(default train)" in text


def test_train_passes_train_config_defaults(monkeypatch, workdir, capsys):
    import zoo
    from zoo.training.config import TrainConfig

    seen = {}

    def fake_train(name, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo, "train", fake_train)
    main(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"])
    defaults = TrainConfig()
    for field in ("epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule", "checkpoint_every",
                  "keep_checkpoints", "strategy", "steps_per_execution", "monitor"):
        assert seen[field] == getattr(defaults, field), field


# --- the environment failing ------------------------------------------------------------


ENVIRONMENT = [
    (errno.ENOSPC, "No space left on device", "[ENOSPC]"),
    (errno.EROFS, "Read-only file system", "[EROFS]"),
    (errno.EACCES, "Permission denied", "[EACCES]"),
    (errno.ENOENT, "No such file or directory", "[ENOENT]"),
]


@pytest.mark.parametrize("number, cause, tag", ENVIRONMENT)
def test_os_errors_from_training_exit_1_with_one_line_naming_the_file(number, cause, tag, monkeypatch, workdir,
                                                                       capsys):
    import zoo

    target = str(workdir / "run" / "checkpoints" / "ckpt-5.data-00000-of-00001")

    def failing_train(name, **kwargs):
        raise OSError(number, cause, target)

    monkeypatch.setattr(zoo, "train", failing_train)
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"], capsys)
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith(f"zoo train: error: {target!r}: {cause} {tag}")


@pytest.mark.parametrize("number, cause, tag", ENVIRONMENT[:3])
def test_os_errors_from_export_exit_1_with_one_line(number, cause, tag, monkeypatch, workdir, capsys):
    import zoo.export

    def failing_export(run_dir, path, *args, **kwargs):
        raise OSError(number, cause, os.path.join(path, "saved_model.pb"))

    monkeypatch.setattr(zoo.export, "export_run", failing_export)
    (workdir / "folder" / "model.keras").write_bytes(b"stands in for a model")
    code, _, err = run_cli(["export", "folder", "--out", "served"], capsys)
    assert code == 1
    assert len(err) == 1, err
    assert "served/saved_model.pb" in err[0] and cause in err[0] and tag in err[0]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_corrupt_model_file_exits_1_naming_it(content, workdir, capsys):
    run = workdir / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(content)
    code, _, err = run_cli(["export", "run", "--out", "served"], capsys)
    assert code == 1, err
    assert len(err) == 1, err
    assert "model.keras" in err[0]
    assert not (workdir / "served").exists()


def test_library_overwrite_wording_becomes_the_flag(monkeypatch, workdir, capsys):
    import zoo.export

    def exists(run_dir, path, *args, **kwargs):
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True (--overwrite) to replace it.")

    monkeypatch.setattr(zoo.export, "export_run", exists)
    (workdir / "folder" / "model.keras").write_bytes(b"stands in for a model")
    code, _, err = run_cli(["export", "folder", "--out", "folder"], capsys)
    assert code == 2
    assert err == ["zoo export: error: 'folder' already exists; pass --overwrite to replace it."]


def test_tensorflow_errors_lose_their_graph_node_names(monkeypatch, workdir, capsys):
    import tensorflow as tf

    import zoo

    def data_loss(name, **kwargs):
        raise tf.errors.DataLossError(None, None, "{{function_node __wrapped__RestoreV2_dtypes_3}} Checksum "
                                      "does not match: stored 1 vs. calculated 2 [Op:RestoreV2] name: ")

    monkeypatch.setattr(zoo, "train", data_loss)
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"], capsys)
    assert code == 1
    assert err == ["zoo train: error: DataLossError: Checksum does not match: stored 1 vs. calculated 2"]


def test_unexpected_error_is_one_line_unless_verbose(monkeypatch, workdir, capsys):
    import zoo

    def locked(name, **kwargs):
        raise RuntimeError("run folder 'run' is in use by process 4242 on host a\nsecond line")

    monkeypatch.setattr(zoo, "train", locked)
    argv = ["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1
    assert err == ["zoo train: error: RuntimeError: run folder 'run' is in use by process 4242 on host a "
                   "(run with --verbose for the traceback)"]
    code, _, err = run_cli([*argv, "--verbose"], capsys)
    assert code == 1
    assert err[0] == "Traceback (most recent call last):" and err[-1].startswith("zoo train: error: RuntimeError")
    # The global form works too.
    code, _, err = run_cli(["--verbose", *argv], capsys)
    assert err[0] == "Traceback (most recent call last):"


def test_interrupt_exits_130_saying_where_the_state_is(monkeypatch, workdir, capsys):
    import zoo

    def interrupted_after_a_checkpoint(name, *, out, **kwargs):
        os.makedirs(os.path.join(out, "checkpoints"))
        open(os.path.join(out, "checkpoints", "ckpt-3.index"), "w").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo, "train", interrupted_after_a_checkpoint)
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"], capsys)
    assert code == 130
    assert err == ["zoo train: interrupted; state saved in run; run the same command to resume"]

    monkeypatch.setattr(zoo, "train", lambda name, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt()))
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "other"], capsys)
    assert code == 130
    assert err == ["zoo train: interrupted; no checkpoint was written yet"]


def test_library_log_records_are_shown_as_the_commands_own(monkeypatch, workdir, capsys):
    import logging

    import zoo

    def resuming(name, **kwargs):
        logging.getLogger("zoo.training.loop").info("resuming from step %d of %d", 40, 60)
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo, "train", resuming)
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run"], capsys)
    assert err[0] == "zoo train: resuming from step 40 of 60"
    code, _, err = run_cli(["train", "cnn_lstm_concat", "--data", "vqa", "--out", "run", "--quiet"], capsys)
    assert not any("resuming" in line for line in err)


def test_describe_error_is_decided_by_type():
    assert cli.describe_error(ValueError("bad"))[0] == 2
    assert cli.describe_error(FileNotFoundError("Image file 'x.png' does not exist."))[0] == 2
    assert cli.describe_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "x"))[0] == 1
    assert cli.describe_error(zipfile.BadZipFile("File is not a zip file"))[0] == 1
    assert cli.describe_error(ImportError("needs onnxruntime: pip install onnxruntime"))[0] == 1


# --- help without TensorFlow; quiet output ------------------------------------------------

# Loads zoo.cli without running zoo/__init__.py (which registers the models and so imports
# Keras): what the command line itself imports for parsing and help.
_LIGHT = """
import sys, types
package = types.ModuleType("zoo")
package.__path__ = [{zoo!r}]
sys.modules["zoo"] = package
from zoo.cli.main import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit:
        pass
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_datasets") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""

HELP_ARGVS = [["--help"], ["--version"], ["list", "--help"], ["describe", "--help"], ["build", "--help"],
              ["train", "--help"], ["export", "--help"], ["predict", "--help"], ["demo", "--help"]]


def test_parsing_and_help_import_no_tensorflow():
    script = _LIGHT.format(zoo=os.path.join(ROOT, "zoo"), argvs=HELP_ARGVS)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"
    assert "usage: zoo demo" in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["list", "--help"], ["train", "--help"]])
def test_help_through_the_installed_package_imports_neither_keras_nor_tensorflow(argv):
    script = (
        "import sys\nfrom zoo.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stdout[-2000:] + result.stderr[-2000:]


_FILTER = """
import os, sys, types
package = types.ModuleType("zoo")
package.__path__ = [{zoo!r}]
sys.modules["zoo"] = package
from zoo.cli import quiet
with quiet.tensorflow_output(enabled={enabled}):
    print("before", file=sys.stderr)
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"E0000 00:00:1796016612.307988   16965 cuda_platform.cc:52] failed call to cuInit: INTERNAL\\n")
    os.write(2, b"I0000 00:00:1796016609.72 16965 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\\n"
                b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with it.\\n")
    os.write(2, b"Epoch 1/1\\n\\rprogress 50%")
    os.write(2, b"\\rprogress 100%\\n")
    print("level", os.environ.get("TF_CPP_MIN_LOG_LEVEL"), file=sys.stderr)
print("after", file=sys.stderr)
"""


@pytest.mark.parametrize("enabled, user_level", [(True, None), (False, None), (True, "0")])
def test_tensorflow_log_lines_are_filtered_unless_asked_for(enabled, user_level):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    script = _FILTER.format(zoo=os.path.join(ROOT, "zoo"), enabled=enabled)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().split("\n")
    if enabled and user_level is None:
        assert lines == ["before", "Epoch 1/1", "\rprogress 50%\rprogress 100%", "level 3", "after", ""]
    else:
        assert len(lines) == 10 and "cuInit" in lines[2]
        assert lines[7] == f"level {user_level}"


def test_a_level_set_by_jax_is_not_the_users_choice(monkeypatch):
    from zoo.cli import quiet

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert not quiet.user_chose_level()
    monkeypatch.setitem(sys.modules, "jax", sys)  # JAX's import does setdefault(TF_CPP_MIN_LOG_LEVEL, "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert not quiet.user_chose_level()
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert quiet.user_chose_level()


def test_console_module_reports_bad_input_with_exit_2():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", "demo", "--seeds", "0"], capture_output=True, text=True, env=env,
        timeout=120, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "zoo demo: error: --seeds 0: expected a positive number of seeds"
    assert "UsageError" not in result.stderr


def test_the_zoos_own_errors_are_shown_as_written():
    from zoo.training.runlock import RunLocked

    code, message = cli.describe_error(RunLocked("run", "pid 42 on host a", "train"))
    assert (code, message) == (1, "run is in use by another process (pid 42 on host a); cannot train it until that "
                                  "process ends.")
