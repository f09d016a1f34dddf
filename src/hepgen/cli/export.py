"""``hepgen export``: write a trained run as an ONNX graph for experiment software (see :mod:`hepgen.export`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.cli.common import add_out, add_quiet, add_user_code, user_code
from hepgen.errors import ConfigError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    export = sub.add_parser(
        "export", help="write a trained model as an ONNX graph (preprocessing folded in)",
        description="Write RUN as one ONNX graph in the original units of the data, for onnxruntime, TMVA SOFIE "
                    "or Triton. --what sample: noise z ~ N(0, I) [and context] -> events (GANs, flows, gaussian, "
                    "AE/VAE decoders); log_prob: events -> log p(x) (flows, gaussian); score: events -> what "
                    "'hepgen score' writes (autoencoders, flows, gaussian, GAN critics, CycleGAN's translation). "
                    "Default: score for autoencoders and cyclegan, sample otherwise. Needs pip install "
                    "'hepgen[onnx]'; the graph is checked with onnxruntime before it is written.")
    export.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit'")
    add_out(export, "the .onnx file to write", required=True)
    export.add_argument("--what", choices=("sample", "score", "log_prob"), default=None,
                        help="what the graph computes (default: by model, see above)")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset, 11 to 20 (default 17)")
    export.add_argument("--no-check", dest="check", action="store_false",
                        help="skip running the graph once in onnxruntime against the torch model")
    add_quiet(export, "no summary of the written graph on stderr")
    add_user_code(export)
    export.set_defaults(handler=cmd_export)

    return export


def cmd_export(args: argparse.Namespace, extra: list[str]) -> int:
    import hepgen
    from hepgen.export import export

    if not str(args.out).strip():
        raise ConfigError("-o needs a file name")
    model = hepgen.load(args.run, **user_code(args))
    result = export(model, args.out, what=args.what, opset=args.opset, check=args.check)
    if not args.quiet:
        print(result.describe(), file=sys.stderr)
    return 0
