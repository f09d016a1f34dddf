"""``hepgen sample``: draw events from a trained run and write them in the layout of the data it imitates.

Events are produced and appended to the output (:class:`hepgen.data.writer.BlockWriter`) ``--batch-size``
at a time, so memory does not grow with ``-n``, and the output appears only when complete. A
conditional model takes ``--context``: one literal row for every event, or FILE[:KEY] with one row
per event (the model's context columns read by name, see :mod:`hepgen.cli.columns`).

``--truncation PSI`` is the truncation trick of the GANs that have one (their ``sample`` takes
``truncation=``): fidelity traded for diversity, each family saying in its docstring what ψ means
(big-gan: latent components beyond ±ψ redrawn; a style-based GAN: w pulled towards its mean). Every
other model refuses it (exit 2). A model with its own check of context rows (``check_sample_context(values,
where, first_row)``, e.g. big-gan's known classes) sees each block of ``--context FILE`` before it is sampled.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any

from hepgen.cli.columns import OUTPUTS, context_names, context_rows, context_source
from hepgen.cli.common import (add_block_size, add_device, add_out, add_quiet, add_seed,
                               add_user_code, check_writable, positive, progress_bar, resolve_device, user_code)
from hepgen.errors import ConfigError, DataError
from hepgen.nn.rng import seeded



def add_parser(sub: Any) -> argparse.ArgumentParser:
    sample = sub.add_parser("sample", help="draw events from a trained model")
    sample.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit', or pretrained:NAME (a model "
                        "shipped with hepgen, e.g. pretrained:phi4-L6)")
    sample.add_argument("-n", type=int, help="number of events (default with --context FILE: one per row of it)")
    add_out(sample, f"output file: {OUTPUTS}; laid out like the data the model imitates", required=True)
    sample.add_argument("--context", help="one context row 'v1,v2,...' for all events, or FILE[:KEY] with one row "
                                          "per event (the model's context columns are taken from it by name; "
                                          "a shower model on a CaloChallenge geometry reads a CaloChallenge file's "
                                          "incident_energies, MeV)")
    add_seed(sample)
    add_device(sample)
    add_block_size(sample)
    add_quiet(sample)
    sample.add_argument("--mcmc", action="store_true", help="a model trained on a lattice action (phi4-flow, "
                        "lattice-flow: give its --action file again): an independence Metropolis-Hastings chain of "
                        "N steps (configs, acceptance, tau_int); .h5/.npz")
    sample.add_argument("--unweighted", action="store_true", help="a model trained on an integrand "
                        "(hypercube-flow, phase-space-flow): N unweighted events by accept-reject against the max weight; "
                        ".h5/.npz, or .lhe (phase-space-flow: momenta, cross section in the header)")
    add_user_code(sample)
    sample.add_argument("--pdg", metavar="IDS", help="-o FILE.lhe of a phase-space-flow: the final-state particles' "
                        "PDG ids, comma separated (default: the run's --pdg, 1,-1,21,...)")
    sample.add_argument("--truncation", metavar="PSI", help="the truncation trick of a GAN that has one (big-gan: "
                        "latent components beyond +-PSI are redrawn, PSI -> 0 gives the mean image; style-gan: w "
                        "pulled towards its mean): fidelity for diversity; other models refuse it")
    sample.add_argument("--extrapolate", action="store_true", help="a shower model (calo-gan, calo-flow): sample "
                        "at incident energies far outside the training range, which it refuses otherwise")
    sample.set_defaults(handler=cmd_sample)

    return sample


def cmd_sample(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    import hepgen
    from hepgen.data.writer import BlockWriter

    if args.n is not None:
        positive(args.n, "-n")
    positive(args.block_size, "--block-size")
    truncation = parse_truncation(args.truncation)
    if args.mcmc or args.unweighted:
        if truncation is not None:
            raise ConfigError("--truncation is the truncation trick of a GAN's latent; --mcmc and --unweighted "
                              "sample a model trained on a target, which has none")
        if args.n is None:
            raise ConfigError("give -n N: the number of " + ("chain steps" if args.mcmc else "unweighted events"))
        return _sample_exact(args)
    writer = BlockWriter(args.out, args.n or 1)  # checks the output spec before the model is even loaded
    model = hepgen.load(args.run, device=resolve_device(args.device), **user_code(args))
    options: dict[str, Any] = {"extrapolate": True} if args.extrapolate else {}
    if options and "extrapolate" not in inspect.signature(model.sample).parameters:
        raise ConfigError(f"--extrapolate is for shower models (calo-gan, calo-flow), not {model.cli_name}")
    if truncation is not None:
        if "truncation" not in inspect.signature(model.sample).parameters:
            raise ConfigError(f"--truncation {args.truncation}: {args.run} holds a {model.cli_name}, which samples "
                              "without a truncation trick (it is for GANs that have one, e.g. big-gan)")
        options["truncation"] = truncation
    if args.context is None and model.context and hasattr(model, "context_file"):  # a shower model
        where = ("a CaloChallenge file of its geometry, or an HDF5 file of incident_energies (N, 1) in MeV: one "
                 "shower per energy, so -n may be left out" if getattr(model, "geometry_", None) is not None
                 else "with an 'energy' dataset (GeV), one shower per row")
        raise ConfigError(f"{model.cli_name} generates showers at given incident energies: give --context E (one "
                          f"energy in GeV for all -n showers) or --context FILE ({where})")
    # a CaloChallenge file as --context of a model on its geometry: its incident energies (MeV -> GeV)
    context = model.context_file(args.context) if args.context and hasattr(model, "context_file") else None
    if context is None:
        context = context_source(args.context, model)
    if args.n is None:  # one event per row of the context file (a CaloChallenge file's incident energies ...)
        if not hasattr(context, "read_rows"):
            raise ConfigError("give -n N, the number of events (it can be left out only with --context FILE, whose "
                              "rows it then is)")
        args.n = writer.n_rows = len(context)
    if hasattr(context, "read_rows") and len(context) != args.n:
        raise DataError(f"--context {args.context} has {len(context)} rows; give one row 'v1,v2' or one per event "
                        f"(-n {args.n})")
    check_energies = getattr(model, "check_context_energies", None)  # a shower model: the whole file, first
    if check_energies is not None and hasattr(context, "read_rows"):
        check_energies(context_rows(context, 0, len(context)), str(args.context), extrapolate=args.extrapolate)
    check_rows = getattr(model, "check_sample_context", None)
    if check_rows is not None and context is not None and not hasattr(context, "read_rows"):
        check_rows(context, f"--context {args.context}", 0)
    # unnamed models write one plain array (x0 .. beside named context columns: see hepgen.data.writer)
    writer.columns = {"samples": model.columns_, "context": context_names(model)}
    writer.bare = {"samples", "context"}
    # seeded draws on a fork of torch's RNG: main() called from Python leaves the caller's RNG as it was
    with seeded(args.seed), writer, torch.no_grad(), progress_bar(args.n, "sample", args.quiet) as bar:
        for start in range(0, args.n, args.block_size):
            stop = min(start + args.block_size, args.n)
            block: dict[str, Any] = {}
            if context is None and hasattr(model, "sample_weighted"):  # trained on a target: events and weights
                drawn, weights = model.sample_weighted(stop - start)
                block.update(weights)
            elif context is None:
                drawn = model.sample(stop - start, **options)
            else:
                c = context_rows(context, start, stop)
                if check_rows is not None and hasattr(context, "read_rows"):
                    check_rows(c, str(args.context), start)
                drawn = model.sample(stop - start, context=c, **options)
            if context is not None:
                c = c if len(c) == stop - start else c.repeat(stop - start, axis=0)
            own = model.output_arrays(drawn, c) if context is not None and hasattr(model, "output_arrays") else None
            if own is not None:  # the model's own file layout (showers on a CaloChallenge geometry)
                block.update(own)
            elif isinstance(drawn, dict):  # events of several arrays: one dataset each, as in the training file
                block.update({k: v.cpu().numpy() for k, v in drawn.items()})
            else:
                block["samples"] = drawn.cpu().numpy()
            if context is not None and own is None:
                block["context"] = c
            writer.write(block)
            bar.update(stop - start)
    if hasattr(context, "close"):
        context.close()
    if not args.quiet:
        print(f"wrote {args.n} events to {args.out}", file=sys.stderr)
    return 0


def parse_truncation(value: str | None) -> float | None:
    """``--truncation PSI`` as a finite number >= 0, or None when not given (ConfigError naming the value)."""
    import math

    from hepgen.options import excerpt

    if value is None:
        return None
    try:
        psi = float(value)
    except ValueError:
        raise ConfigError(f"--truncation {excerpt(value)}: not a number; give the truncation PSI >= 0, "
                          "e.g. --truncation 0.5") from None
    if not math.isfinite(psi) or psi < 0:
        raise ConfigError(f"--truncation {excerpt(value)}: the truncation PSI must be a finite number >= 0")
    return psi


def _sample_exact(args: argparse.Namespace) -> int:
    """--mcmc / --unweighted: the whole chain or event set in memory, then written with its summary numbers."""
    from pathlib import Path

    import hepgen
    from hepgen.data import io

    flag = "--mcmc" if args.mcmc else "--unweighted"
    if args.mcmc and args.unweighted:
        raise ConfigError("give --mcmc (lattice flows) or --unweighted (integration flows), not both")
    if args.context is not None:
        raise ConfigError(f"{flag} samples a model trained on a target, which takes no --context")
    suffix = Path(args.out.split(":")[0]).suffix.lower()
    lhe = args.unweighted and suffix == ".lhe"
    if suffix not in (".h5", ".hdf5", ".npz") and not lhe:
        raise ConfigError(f"{flag} writes arrays and summary numbers: -o must be .h5 or .npz"
                          f"{' (or .lhe)' if args.unweighted else ''}, got {args.out}")
    check_writable(args.out.split(":")[0] if lhe else None, "-o")
    if args.pdg is not None and not lhe:
        raise ConfigError(f"--pdg names the particles of an LHE file: -o must be .lhe, got {args.out}")
    pdg = None
    if args.pdg is not None:
        from hepgen.options import Option, convert

        pdg = convert("--pdg", args.pdg, Option((1,), item=int), "hepgen sample")
    model = hepgen.load(args.run, device=resolve_device(args.device), **user_code(args))
    if lhe and not hasattr(model, "momenta"):
        raise ConfigError(f"-o {args.out}: an LHE file holds particles' momenta, from a phase-space-flow; "
                          f"{args.run} holds a {model.cli_name}: write .h5 or .npz")
    if pdg is not None and len(pdg) != model.particles:
        raise ConfigError(f"--pdg {args.pdg}: {len(pdg)} ids for the {model.particles} particles of {args.run}")
    method = "sample_mcmc" if args.mcmc else "sample_unweighted"
    if not hasattr(model, method):
        kind = "lattice action (phi4-flow, lattice-flow)" if args.mcmc else "integrand (hypercube-flow)"
        raise ConfigError(f"{flag} needs a model trained on a {kind}; {args.run} holds a {model.cli_name}")
    result = getattr(model, method)(args.n, seed=args.seed, batch_size=args.block_size)
    if lhe:
        from hepgen.data.lhe import write_lhe

        write_lhe(args.out, result["momenta"], result["pdg"] if pdg is None else pdg, float(result["sqrt_s"]),
                  float(result["cross_section_pb"]), float(result["cross_section_error_pb"]),
                  comment=f"hepgen sample {args.run}: {args.n} events, seed {args.seed}")
    else:
        io.write(args.out, result)
    if not args.quiet:
        keys = ("acceptance", "tau_int", "tau_int_magnetisation", "tau_int_action") if args.mcmc else \
            ("efficiency", "max_weight", "overweight_fraction", "integral", "integral_error", "calls",
             *(("cross_section_pb", "cross_section_error_pb") if "cross_section_pb" in result else ()))
        print(f"wrote {args.n} {'configurations' if args.mcmc else 'events'} to {args.out}; "
              + ", ".join(f"{k} = {float(result[k]):.4g}" for k in keys), file=sys.stderr)
    return 0
