"""The generation rules of mnist_audio: documented degradation shares, SNRs, and the pinned fingerprint."""

import collections
import hashlib

import numpy as np
import pytest
from zoo.datasets.fsdd import fsdd_files as fsdd
from zoo.datasets.mnist_audio import generation as g

N = 400


def _speech(n=2000, seed=0, amplitude=3000):
    # A tone with an envelope: a stand-in for a recording.
    t = np.arange(n)
    wave = amplitude * np.sin(t * 0.07) * np.hanning(n) + np.random.default_rng(seed).normal(0, amplitude / 100, n)
    return wave.astype(np.int16)


def test_audio_noise_is_at_the_documented_snr():
    speech = _speech(amplitude=200)  # quiet enough that even -30 dB noise fits int16 unscaled
    seen = collections.Counter()
    for i in range(N):
        mixed, level = g.degrade_audio(speech, g.Draws("audio", i))
        again, _ = g.degrade_audio(speech, g.Draws("audio", i))
        np.testing.assert_array_equal(mixed, again)
        name, snr, _ = g.AUDIO_LEVELS[level]
        seen[name] += 1
        assert mixed.dtype == np.int16 and mixed.shape == speech.shape
        noise = mixed.astype(float) - speech
        if snr is None:
            assert not noise.any()
        else:
            measured = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(noise**2))
            assert abs(measured - snr) < 0.5, (name, measured)
    assert all(abs(seen[name] / N - w / 100) < 0.07 for name, _, w in g.AUDIO_LEVELS), seen


def test_loud_mixtures_are_scaled_down_not_clipped():
    speech = _speech(amplitude=30000)
    for i in range(40):
        mixed, level = g.degrade_audio(speech, g.Draws("loud", i))
        if g.AUDIO_LEVELS[level][1] == -30.0:
            assert np.abs(mixed.astype(int)).max() <= 32767
            assert np.mean(np.abs(mixed.astype(int)) >= 32767) < 0.01, "clipping would saturate many samples"
            return
    raise AssertionError("no -30 dB draw in 40")


def test_image_degradations():
    image = np.full((28, 28, 1), 200, np.uint8)
    seen = collections.Counter()
    for i in range(N):
        out, kind = g.degrade_image(image, g.Draws("image", i))
        name = g.IMAGE_KINDS[kind]
        seen[name] += 1
        changed = out[..., 0] != 200
        if name == "clean":
            assert not changed.any()
        elif name == "occluded":
            assert (out[..., 0][changed] == 0).all() and 14 * 14 <= changed.sum() <= 20 * 20
        else:
            assert changed.mean() > 0.95 and 100 < out.mean() < 155, "noise: uniform pixels, the digit gone"
    assert (image == 200).all()
    assert all(abs(seen[k] / N - w / 100) < 0.07 for k, w in zip(g.IMAGE_KINDS, (35, 30, 35), strict=True)), seen


def test_texts_often_say_nothing():
    kinds = collections.Counter(g.TEXT_KINDS[g.text_for(i % 10, g.Draws("text", i))[1]] for i in range(N))
    silent = kinds["filler"] + kinds["none"]
    assert 0.55 < silent / N < 0.70, kinds
    for i in range(50):
        text, kind = g.text_for(3, g.Draws("t", i))
        if g.TEXT_KINDS[kind] == "filler":
            assert not set(text.replace(",", "").split()) & set(g.DIGIT_NAMES), text


def _recording(digit, speaker, take):
    return fsdd.Recording(f"{digit}_{speaker}_{take}.wav", digit, speaker, take, _speech(50, take))


def test_pairing_is_class_conditional_within_the_split_and_balanced():
    recordings = [_recording(d, s, t) for d in range(10) for s in fsdd.SPEAKERS[:2] for t in (0, 3, 5, 7, 20, 30)]
    pools = g.recording_pools(recordings)
    used = collections.Counter()
    for i in range(N):
        for split in g.SPLITS:
            r = g.pair(i % 10, split, pools, g.Draws("pair", split, i))
            assert r.digit == i % 10 and fsdd.split_of(r.speaker, r.take) == split
            used[r.name] += split == "train"
    train_names = [r.name for r in recordings if fsdd.split_of(r.speaker, r.take) == "train"]
    assert set(used) >= set(train_names), "every train recording gets used"
    with pytest.raises(ValueError, match="No test recording of digit 4"):
        g.pair(4, "test", g.recording_pools([r for r in recordings if r.digit != 4]), g.Draws(0))


def _fingerprint() -> str:
    digest = hashlib.sha256()
    image = (np.arange(28 * 28, dtype=np.int64) % 251).astype(np.uint8).reshape(28, 28, 1)
    speech = _speech(300)
    pools = g.recording_pools([_recording(d, "george", t) for d in range(10) for t in (0, 6, 12, 13)])
    for example_id in range(200):
        draws = {part: g.Draws(0, "av", part, example_id) for part in ("pair", "image", "audio", "text")}
        recording = g.pair(example_id % 10, g.SPLITS[example_id % 3], pools, draws["pair"])
        degraded, image_kind = g.degrade_image(image, draws["image"])
        audio, audio_kind = g.degrade_audio(speech, draws["audio"])
        text, text_kind = g.text_for(example_id % 10, draws["text"])
        digest.update(f"{g.kept(example_id)}|{recording.name}|{image_kind}|{audio_kind}|{text}|{text_kind}\n".encode())
        digest.update(degraded.tobytes() + audio.tobytes())
    return digest.hexdigest()


# A rule change under an unchanged version would let TFDS reuse old prepared data.
GENERATION_FINGERPRINTS = {"1.0.0": "0bbaf169b26be941152800a728dfcb5848ca8b29c52bfa3bce1ad14f77970153"}


def test_generation_rules_are_pinned_to_the_dataset_version():
    from zoo.datasets.mnist_audio.mnist_audio_dataset_builder import Builder

    version = str(Builder.VERSION)
    assert version in GENERATION_FINGERPRINTS, f"record the generation fingerprint of version {version}"
    assert _fingerprint() == GENERATION_FINGERPRINTS[version], (
        f"The mnist_audio generation rules changed but Builder.VERSION is still {version}: bump the version "
        "(with a RELEASE_NOTES entry) and record the new fingerprint."
    )
