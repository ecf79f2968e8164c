"""`zoo describe NAME`: print a model's card."""

import json

from zoo.cli.build_cmd import parse_overrides


def add_parser(subparsers):
    parser = subparsers.add_parser("describe", help="print a model card", description="Print a model's card.")
    parser.add_argument("name", help="registered model name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the card as JSON")
    return parser


def format_card(card: dict) -> str:
    """Renders a model card as aligned plain text."""
    lines = [card["name"], "=" * len(card["name"]), card["description"], ""]
    rows = [
        ("origin", card["origin"]),
        ("modalities", ", ".join(card["modalities"])),
        ("fusion", card["fusion"] or "none (unimodal)"),
        ("parameters", f"{card['parameters']:,}"),
        ("multiply-adds / example", f"{card['macs_per_example']:,}"),
    ]
    for io in ("inputs", "outputs"):
        for spec in card[io]:
            shape = "[" + ", ".join("batch" if d is None else str(d) for d in spec["shape"]) + "]"
            rows.append((io[:-1], f"{spec['name']}: {spec['dtype']} {shape}"))
    if card["demo_accuracy"]:
        for config, accuracy in card["demo_accuracy"].items():
            rows.append(("demo accuracy", f"{config}: {accuracy:.2%}"))
    for tower, weights in (card.get("weights") or {}).items():
        rows.append(("pretrained weights", f"{tower}: {weights}"))
    width = max(len(key) for key, _ in rows)
    lines += [f"{key:<{width}}  {value}" for key, value in rows]
    lines += ["", "hyperparameters (defaults unless overridden):"]
    key_width = max(len(k) for k in card["hyperparameters"])
    lines += [f"  {key:<{key_width}}  {value!r}" for key, value in card["hyperparameters"].items()]
    return "\n".join(lines)


def run(args) -> int:
    import zoo  # registers the models; loads Keras and TensorFlow, so not at parse time

    card = zoo.describe(args.name, **parse_overrides(args.overrides))
    print(json.dumps(card, indent=2) if args.json else format_card(card))
    return 0
