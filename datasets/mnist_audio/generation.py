"""Generation rules of mnist_audio: which images are kept, which recording each gets, how each modality is degraded.

Every random choice is a pure function of (seed, config, example id) through
mnist_text's `Draws` (SHA-512 for small draws, PCG64 raw output for noise), so
an example never depends on the order of generation, the machine or library
versions. The dataset card (README.md) describes the same rules in prose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from zoo.datasets.fsdd import fsdd_files as fsdd
from zoo.datasets.mnist_text import generation as text_rules

Draws = text_rules.Draws
DIGIT_NAMES = text_rules.DIGIT_NAMES
SPLITS = text_rules.SPLITS
CONFIG_NAMES = ("av",)

# One MNIST image in KEEP_EVERY (example id divisible by it) is kept: 11,000
# train, 1,000 validation and 2,000 test pairs. Each pair stores its waveform,
# so pairing all 70,000 images would write ~0.5 GB and train 5x slower.
KEEP_EVERY = 5

IMAGE_KINDS = ("clean", "occluded", "noise")
_IMAGE_WEIGHTS = (35, 30, 35)  # percent
_OCCLUSION_SIDE = (14, 20)  # inclusive range of the erased rectangle's sides (as mnist_text's caption)
_OCCLUSION_CENTER = (10, 17)  # inclusive range of its centre row / column

# (name, signal-to-noise ratio in dB or None for no noise, percent)
AUDIO_LEVELS = (("clean", None, 30), ("snr_5db", 5.0, 20), ("snr_-5db", -5.0, 20), ("snr_-30db", -30.0, 30))
AUDIO_KINDS = tuple(name for name, _, _ in AUDIO_LEVELS)
_INT16_MAX = 32767

TEXT_KINDS = (*text_rules.CAPTION_KINDS, "filler")
_CAPTION_PERCENT = 50  # the rest get a filler that says nothing
_FILLERS = (
    "a digit",
    "a digit, written and spoken",
    "someone wrote and said a number",
    "a handwritten digit and a recording",
    "guess the number",
)


def kept(example_id: int) -> bool:
    """Whether the MNIST example with this id (train 0..59999, test 60000..69999) is in mnist_audio."""
    return example_id % KEEP_EVERY == 0


def recording_pools(recordings: Sequence[fsdd.Recording]) -> dict[str, list[list[fsdd.Recording]]]:
    """Recordings by split (fsdd's `takes` scheme) and digit, each list sorted by file name.

    Raises:
        ValueError: if a split lacks recordings of some digit (it could not be paired).
    """
    pools = {split: [[] for _ in DIGIT_NAMES] for split in SPLITS}
    for r in sorted(recordings, key=lambda r: r.name):
        pools[fsdd.split_of(r.speaker, r.take, "takes")][r.digit].append(r)
    return pools


def pair(digit: int, split: str, pools: Mapping[str, list[list[fsdd.Recording]]], draws: Draws) -> fsdd.Recording:
    """A recording of `digit` drawn uniformly from the same split's pool.

    Raises:
        ValueError: if that pool is empty.
    """
    pool = pools[split][digit]
    if not pool:
        raise ValueError(f"No {split} recording of digit {digit} to pair with; expected every digit in every split.")
    return pool[draws.below(len(pool))]


def degrade_image(image: np.ndarray, draws: Draws) -> tuple[np.ndarray, int]:
    """Leaves an image clean, occludes it, or replaces it by noise.

    Percent: clean 35; occluded 30 (a rectangle with sides of 14-20 pixels,
    centred in rows and columns 10-17, erased to black, as mnist_text's
    caption config); noise 35 (every pixel uniform 0-255: nothing of the digit left).

    Returns:
        (new uint8 image of the input's shape, kind id in `IMAGE_KINDS`).
    """
    kind = draws.weighted(_IMAGE_WEIGHTS)
    out = np.array(image, dtype=np.uint8, copy=True)
    plane = out.reshape(out.shape[0], out.shape[1])
    if IMAGE_KINDS[kind] == "occluded":
        lo, hi = _OCCLUSION_SIDE
        height, width = lo + draws.below(hi - lo + 1), lo + draws.below(hi - lo + 1)
        lo, hi = _OCCLUSION_CENTER
        row, col = lo + draws.below(hi - lo + 1), lo + draws.below(hi - lo + 1)
        top, left = max(0, row - height // 2), max(0, col - width // 2)
        plane[top : row - height // 2 + height, left : col - width // 2 + width] = 0
    elif IMAGE_KINDS[kind] == "noise":
        plane[...] = (draws.raw(plane.size) & np.uint64(0xFF)).astype(np.uint8).reshape(plane.shape)
    return out, kind


def degrade_audio(samples: np.ndarray, draws: Draws) -> tuple[np.ndarray, int]:
    """Mixes white noise into a recording at a drawn signal-to-noise ratio.

    Levels (percent): clean 30 (unchanged), 5 dB 20, -5 dB 20, -30 dB 30 (the
    speech is buried). The noise is uniform white noise whose RMS is the
    recording's RMS x 10^(-SNR/20); a mixture that would overflow int16 is
    scaled down as a whole (never clipped), which keeps the SNR.

    Args:
        samples: int16 [n]; not modified.

    Returns:
        (int16 [n] mixture, level id in `AUDIO_KINDS`).
    """
    level = draws.weighted([w for _, _, w in AUDIO_LEVELS])
    snr = AUDIO_LEVELS[level][1]
    if snr is None:
        return np.array(samples, dtype=np.int16, copy=True), level
    signal = samples.astype(np.float64)
    rms = max(float(np.sqrt(np.mean(signal**2))), 1.0)
    # raw 64-bit draws -> uniform in [-1, 1), whose RMS is 1/sqrt(3).
    uniform = (draws.raw(len(signal)) >> np.uint64(11)).astype(np.float64) / float(1 << 52) - 1.0
    mixture = signal + uniform * np.sqrt(3.0) * rms * 10.0 ** (-snr / 20.0)
    peak = float(np.max(np.abs(mixture)))
    if peak > _INT16_MAX:
        mixture *= _INT16_MAX / peak
    return np.round(mixture).astype(np.int16), level


def text_for(digit: int, draws: Draws) -> tuple[str, int]:
    """A text about `digit`: half the time an mnist_text caption, otherwise a filler that says nothing.

    Returns:
        (text, kind id in `TEXT_KINDS`: the caption kinds, then "filler").
    """
    if draws.below(100) < _CAPTION_PERCENT:
        return text_rules.caption_example(digit, draws)
    return draws.choice(_FILLERS), TEXT_KINDS.index("filler")
