"""`zoo build NAME [--set key=value ...] [--summary] [--plot FILE.png]`."""

import ast
import os
import shutil

from zoo.core.atomic import atomic_path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "build", help="build a model, print its summary or draw it", description="Build a registered model."
    )
    parser.add_argument("name", help="registered model name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override, Python literal values (repeatable): --set vocab_size=2000")
    parser.add_argument("--summary", action="store_true", help="print the Keras summary")
    parser.add_argument("--plot", metavar="FILE.png", help="write a diagram (needs pydot and graphviz)")
    return parser


def parse_overrides(items: list[str]) -> dict:
    """Turns ["key=value", ...] into a dict; values are Python literals, else strings.

    Raises:
        ValueError: for an item without `=` or a key given twice.
    """
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set vocab_size=2000")
        if key in overrides:
            raise ValueError(f"--set {key} is given twice")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        overrides[key] = value
    return overrides


def check_plot_path(path: str) -> None:
    """Checks a --plot file name before anything is built.

    Raises:
        ValueError: for an extension other than .png/.svg/.pdf/.dot.
        FileNotFoundError: if the file's directory does not exist.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".png", ".svg", ".pdf", ".dot"):
        raise ValueError(f"--plot {path!r}: expected a file name ending in .png, .svg, .pdf or .dot")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"--plot {path!r}: directory {directory!r} does not exist")


def plot(model, path: str) -> None:
    """Draws `model` to `path` with `keras.utils.plot_model`, written atomically.

    Raises:
        ValueError: if the path does not end in .png/.svg/.pdf, or pydot or the
            graphviz `dot` program is missing (with how to install them).
    """
    import keras

    check_plot_path(path)
    try:
        import pydot  # noqa: F401
    except ImportError as error:
        raise ValueError("drawing needs pydot: pip install 'zoo[plot]'") from error
    if shutil.which("dot") is None:
        raise ValueError("drawing needs the graphviz 'dot' program: apt-get install graphviz (or brew install graphviz)")
    with atomic_path(path) as temporary:
        keras.utils.plot_model(model, to_file=temporary, show_shapes=True, show_layer_names=True)


def run(args) -> int:
    import zoo  # registers the models; loads Keras and TensorFlow, so not at parse time

    overrides = parse_overrides(args.overrides)
    if args.plot:
        check_plot_path(args.plot)
    model = zoo.build(args.name, **overrides)
    if args.summary:
        model.summary()
    if args.plot:
        plot(model, args.plot)
        print(f"wrote {args.plot}")
    if not args.summary and not args.plot:
        print(f"{model.name}: {model.count_params():,} parameters; inputs "
              + ", ".join(t.name for t in model.inputs))
    return 0
