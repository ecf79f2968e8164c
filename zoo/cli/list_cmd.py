"""`zoo list [PATTERN]`: the registered model names."""



def add_parser(subparsers):
    parser = subparsers.add_parser("list", help="list registered models", description="List registered model names.")
    parser.add_argument("pattern", nargs="?", default=None, help="shell-style wildcard, e.g. 'cnn_lstm_*'")
    return parser


def run(args) -> int:
    import zoo  # registers the models; loads Keras and TensorFlow, so not at parse time
    from zoo.cli.main import UsageError

    names = zoo.list_models(args.pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}; `zoo list` shows all names")
    for name in names:
        print(name)
    return 0
