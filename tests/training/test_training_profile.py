"""`zoo.train(..., profile=(start, stop))`: a trace of those steps under the run's TensorBoard logs."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from tests.training import synthetic
from zoo.training import TrainConfig
from zoo.training.profiling import check_profile

EXAMPLES, BATCH = 32, 8
STEPS = EXAMPLES // BATCH


def _train(out, **options):
    options.setdefault("strategy", "default")
    options.setdefault("seed", 5)
    options.setdefault("batch_size", BATCH)
    return synthetic.train_tiny(out, examples_count=EXAMPLES, **options)


def _traces(out):
    return glob.glob(os.path.join(str(out), "logs", "train", "plugins", "profile", "*", "*.xplane.pb"))


@pytest.mark.slow
def test_a_profiled_range_writes_a_trace_and_changes_no_result(tmp_path):
    profiled = _train(tmp_path / "profiled", profile=(1, 3))
    traces = _traces(tmp_path / "profiled")
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0
    assert os.path.dirname(traces[0]) == profiled.profile_dir
    # Steps 2 and 3 were traced, so left out of the timing with the epoch's first call.
    assert len(profiled.step_times) == STEPS - 3
    plain = _train(tmp_path / "plain")
    assert plain.profile_dir is None and _traces(tmp_path / "plain") == []
    assert profiled.metrics == pytest.approx(plain.metrics)
    for a, b in zip(profiled.model.get_weights(), plain.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ((3, 1), r"profile=\(3, 1\): stop 1 must be greater than start 3"),
        ((2, 2), r"profile=\(2, 2\): stop 2 must be greater than start 2"),
        ((-1, 2), r"profile=\(-1, 2\): start -1 is negative"),
        ("1:3", r"profile='1:3': expected \(start, stop\), two integers"),
        ((1.0, 3), r"profile=\(1.0, 3\): expected \(start, stop\), two integers"),
        ((1, 3, 5), r"profile=\(1, 3, 5\): expected \(start, stop\)"),
    ],
)
def test_bad_ranges_are_refused_naming_the_value(profile, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(profile=profile)


def test_a_range_beyond_the_planned_steps_is_refused_before_training(tmp_path):
    # Known from the options alone: 2 epochs of 4 steps.
    with pytest.raises(ValueError, match=r"profile=\(0, 9\): stop 9 is beyond the run's 8 steps"):
        TrainConfig(epochs=2, steps_per_epoch=4, profile=(0, 9))
    # Known once the dataset's size is: checked before the first step.
    with pytest.raises(ValueError, match=r"profile=\(2, 5\): stop 5 is beyond the run's 4 steps; expected stop <= 4"):
        _train(tmp_path, profile=(2, 5))
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "config.json").exists()
    assert check_profile([0, 4], total_steps=4) == (0, 4)


@pytest.mark.slow
def test_a_resumed_run_traces_what_is_left_of_the_range_and_skips_a_passed_one(tmp_path):
    _train(tmp_path, epochs=1, checkpoint_every=0)
    # Resumed at step 4: steps 5 and 6 remain of 3..6.
    second = _train(tmp_path, epochs=2, checkpoint_every=0, profile=(3, 6))
    assert second.resumed_from_step == STEPS and second.profile_dir is not None
    assert len(_traces(tmp_path)) == 1
    third = _train(tmp_path, epochs=2, checkpoint_every=0, profile=(3, 6))
    assert third.already_complete and third.profile_dir is None
    assert len(_traces(tmp_path)) == 1
