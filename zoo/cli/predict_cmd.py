"""`zoo predict EXPORT_DIR --image digit.png --text "is it even?" [--audio digit.wav]`.

Runs an export made by `zoo export` (any format) on one image file, one text
and/or one WAV file through `zoo.export.predict` and prints the answer and the
top probabilities: for a dual encoder, the zero-shot class of the image; for
a captioner, the caption it writes. The image is read by `zoo.export.read_image` (size and PNG
dimensions checked before decoding), the recording by `zoo.export.read_audio`
(mono 16-bit PCM at the export's rate, at most its length cap, checked from
the header); a text longer than the export accepts is refused before the
model is loaded.

`--runtime` names the runtime (`auto`: the export's format's own; one that
cannot run the format is refused, exit 2; one whose package is missing says
what to install, exit 1), and `--timing RUNS` adds the median latency of the
runtime's call over RUNS calls after a warm-up, for choosing between them.
"""

from __future__ import annotations

import json
import sys


def add_parser(subparsers):
    from zoo.export import FORMAT_RUNTIMES, MAX_TEXT_BYTES, RUNTIMES

    parser = subparsers.add_parser(
        "predict",
        help="run an export on an image file and/or a text",
        description=(
            "Run an export made by `zoo export` on one example and print the answer and the top probabilities. "
            "Images are read like MNIST: greyscale, a light digit on a dark ground, at the model's size "
            "(28x28 for the zoo's models); a dark digit on white paper must be inverted first."
        ),
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="a directory written by `zoo export`")
    parser.add_argument("--image", metavar="FILE",
                        help="image file (PNG, JPEG, GIF, BMP) of the model's size: light digit on a dark ground")
    parser.add_argument("--text", metavar="TEXT",
                        help=f"the question or caption, raw (at most the export's byte limit, {MAX_TEXT_BYTES} by default)")
    parser.add_argument("--audio", metavar="FILE.wav",
                        help="WAV file: mono, 16-bit PCM, at the export's sample rate (8 kHz for the zoo's models)")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="how many probabilities to print (default 3)")
    parser.add_argument("--resize", action="store_true", help="resize the image to the model's size instead of refusing")
    parser.add_argument("--beam-width", type=int, default=1, metavar="W",
                        help="captioner exports: beam search width (default 1 = greedy decoding)")
    own = ", ".join(f"{runtime} for {fmt}" for fmt, runtime in FORMAT_RUNTIMES.items())
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help=f"runtime to run the export in (default auto: the format's own, {own})")
    parser.add_argument("--timing", type=int, default=0, metavar="RUNS",
                        help="after the answer, run the example RUNS more times (after warm-up calls) and print "
                             "the median latency of the runtime's call in ms (default 0: no timing)")
    parser.add_argument("--json", action="store_true",
                        help="print {answer, index, probabilities by class name} as JSON (one object per head "
                             "for multi-task models)")
    return parser


def run(args) -> int:
    from zoo.cli.main import UsageError
    from zoo.export import MAX_TEXT_BYTES, image_polarity_warning, predict, read_audio, read_image
    from zoo.export.inference import WARMUP_RUNS, serving_inputs
    from zoo.export.metadata import read_metadata
    from zoo.export.runtimes import resolve_runtime

    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a positive number of classes to print.")
    if args.timing < 0:
        raise UsageError(f"--timing {args.timing}: expected a number of runs >= 0.")
    metadata = read_metadata(args.export_dir)
    resolve_runtime(metadata["format"], args.runtime, args.export_dir, label="--runtime ")
    if metadata.get("kind") == "captioner":
        if args.timing:
            raise UsageError("--timing: not available for captioner exports (it times one classification call)")
        return _caption(args, metadata)
    if metadata.get("kind") == "dual_encoder" and args.text is not None:
        raise UsageError("this dual encoder classifies the image zero-shot against the class prompts stored in "
                         "the export: drop --text (its embed_text signature embeds texts)")
    needs_image, needs_text, needs_audio = serving_inputs(metadata)
    if needs_image and args.image is None:
        raise UsageError("this model reads an image: pass --image FILE")
    if needs_text and args.text is None:
        raise UsageError("this model reads text: pass --text TEXT")
    if not needs_image and args.image is not None:
        raise UsageError("this model reads no image: drop --image")
    if not needs_text and args.text is not None:
        raise UsageError("this model reads no text: drop --text")
    if needs_audio and args.audio is None:
        raise UsageError("this model reads audio: pass --audio FILE.wav")
    if not needs_audio and args.audio is not None:
        raise UsageError("this model reads no audio: drop --audio")
    if needs_text:
        limit = metadata.get("max_text_bytes") or MAX_TEXT_BYTES
        size = len(args.text.encode("utf-8"))
        if size > limit:
            raise UsageError(f"--text is {size} bytes (UTF-8); this export accepts at most {limit}: shorten it.")
    samples = None
    if needs_audio:
        # Before the image: a refused recording is the one line printed, with no image warning before it.
        samples = read_audio(args.audio, metadata["audio_sample_rate"], metadata["max_audio_samples"])
    pixels = None
    if needs_image:
        pixels = _read_image(read_image, args.image, metadata["image_shape"], args.resize)
        warning = image_polarity_warning(pixels)
        if warning:
            print(f"zoo predict: warning: {args.image}: {warning}", file=sys.stderr)
    result = predict(args.export_dir, image=pixels, text=args.text, audio=samples, runtime=args.runtime,
                     timing_runs=args.timing)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    heads = result.get("heads") or {"": result}
    for head, info in heads.items():
        prefix = f"[{head}] " if head else ""
        print(f"{prefix}answer: {info['answer']}")
        print(f"{prefix}top probabilities:")
        top = list(info["probabilities"].items())[: args.top]  # most probable first
        width = max(len(name) for name, _ in top)
        for name, probability in top:
            print(f"  {name:>{width}s}  {probability:.4f}")
    if "latency_ms" in result:
        latency = result["latency_ms"]
        print(f"latency: median {latency['median']:.3f} ms over {latency['runs']} runs "
              f"({latency['runtime']}, batch 1, after {WARMUP_RUNS} warm-up calls)")
    return 0


def _caption(args, metadata) -> int:
    """Prints the caption a captioner export writes for --image (no --text: it writes the text)."""
    from zoo.cli.main import UsageError
    from zoo.export import read_image
    from zoo.export.captioner import MAX_BEAM_WIDTH, caption

    if args.image is None:
        raise UsageError("this model captions an image: pass --image FILE")
    if args.text is not None:
        raise UsageError("this model writes the text itself: drop --text")
    if not 1 <= args.beam_width <= MAX_BEAM_WIDTH:
        raise UsageError(f"--beam-width {args.beam_width}: expected 1 to {MAX_BEAM_WIDTH}")
    pixels = _read_image(read_image, args.image, metadata["image_shape"], args.resize)
    text = caption(args.export_dir, pixels, beam_width=args.beam_width)
    print(json.dumps({"caption": text, "beam_width": args.beam_width}) if args.json else f"caption: {text}")
    return 0


def _read_image(read_image, path: str, shape, resize: bool):
    """The library's reader, with TensorFlow's graph-node names kept out of its decoding errors."""
    from zoo.cli.main import clean_message

    try:
        return read_image(path, shape, resize=resize)
    except ValueError as error:
        raise ValueError(clean_message(str(error))) from None
