"""``hepgen data``: write a sample of a built-in generator."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from hepgen.cli.common import suggest, write_outputs
from hepgen.errors import ConfigError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    data = sub.add_parser("data", help="generate a built-in data set",
                          description="Generators: toys, jets, calo, phi4, smear. Options: --option key=value.")
    data.add_argument("name", metavar="NAME")
    data.add_argument("-n", type=int, required=True, help="number of events")
    data.add_argument("-o", "--out", required=True, help="output file (.h5 recommended)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="generator option, repeatable (e.g. --option name=moons)")
    data.set_defaults(handler=cmd_data)

    return data


def cmd_data(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from hepgen.data.generators import get_generator

    generator = get_generator(args.name)
    options: dict[str, Any] = {}
    valid = getattr(generator, "OPTIONS", {})
    for item in args.option:
        if "=" not in item:
            raise ConfigError(f"--option {item!r} must be KEY=VALUE")
        key, value = item.split("=", 1)
        if key not in valid:
            raise ConfigError(f"unknown option {key!r} for generator {args.name!r}{suggest(key, list(valid))}; "
                              f"valid: {', '.join(valid)}")
        options[key] = valid[key][0](yaml.safe_load(value)) if valid[key][0] is not bool else bool(
            yaml.safe_load(value))
    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of events, got {args.n}")
    arrays = generator.generate(args.n, seed=args.seed, **options)
    names = generator.columns(**options) if hasattr(generator, "columns") else {}
    arrays = {k: v for k, v in arrays.items() if getattr(v, "ndim", 0) > 0 or k not in names}
    write_outputs(args.out, arrays, names)
    summary = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items() if getattr(v, "ndim", 0))
    scalars = ", ".join(f"{k} = {float(v):.4g}" for k, v in arrays.items()
                        if getattr(v, "ndim", 1) == 0 and np.issubdtype(np.asarray(v).dtype, np.number))
    print(f"wrote {args.out}: {summary}" + (f"; {scalars}" if scalars else ""), file=sys.stderr)
    return 0


