"""``hepgen report KIND RUN``: a report folder about a trained run (what ``compare`` does for two samples).

``hepgen report latents RUN [--data DATA] --report DIR`` — the latents of a VAE (``vae``, ``conv-vae``, any β):
traversals of the most active latents, the KL per latent, and how each latent tracks physical quantities
(mutual information, Pearson and Spearman correlations, a MIG-like gap per quantity). The numbers come from
:func:`hepgen.evaluate.latents.disentanglement`, the folder from :func:`hepgen.report.latents.latents_report`.

Quantities (``--quantities``), one value per event of DATA:

* columns of DATA when it is a table (default: all of them);
* beside jet images (``jets.h5:qcd/images``), the columns of the jets' ``features`` dataset of the same group
  (default: ``mass``, ``tau21``);
* beside a calorimeter layer (``showers.h5:layer_1``), the showers' ``depth`` = Σ_k k E_k / Σ_k E_k (energy-
  weighted mean layer index), ``frac_k``, ``energy`` (E_inc) and every CaloChallenge feature of
  :func:`hepgen.metrics.shower_observables.shower_features` (default: depth, frac_0..2, energy);
* or FILE:KEY, a table with one row per event of DATA (all its columns).

DATA defaults to the run's training data (the spec its config.yaml records), for both kinds.

``hepgen report truncation RUN --data DATA [--truncation 0.25,0.5,1,none]`` — the fidelity–diversity curve of a
GAN with a truncation trick (big-gan, style-gan): per ψ, FPD and a classifier AUC of physics features (image summary
features for images) and k-NN precision, density, recall and coverage against DATA, the model sampled with DATA's
own context rows (:func:`hepgen.report.truncation.truncation_curve`, the folder from
:func:`hepgen.report.truncation.truncation_report`).

``report`` is a verb of its own (rather than a flag of ``compare``): it judges one trained run on one data set,
where ``compare`` judges two samples; KIND leaves room for other reports of a run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.cli.common import add_device, add_out, add_quiet, add_seed, check_report, check_writable, emit_result
from hepgen.errors import ConfigError, DataError

#: the quantities a latents report tracks by default beside jet images, and beside a shower layer
JET_DEFAULTS = ("mass", "tau21")
SHOWER_DEFAULTS = ("depth", "frac_0", "frac_1", "frac_2", "energy")


KINDS = ("latents", "truncation")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report", help="a report folder about one trained run on one data set (KIND: latents of a VAE, truncation "
                       "curve of a GAN)",
        description="hepgen report latents RUN --data DATA --report DIR: latent traversals of a VAE (the mean "
                    "latent decoded with each of the --top latents of largest KL varied over +-SPAN sigma of the "
                    "aggregate posterior) and how each latent tracks physical quantities: mutual information "
                    "(scikit-learn's mutual_info_regression, KSG k-NN estimator, nats), Pearson and Spearman "
                    "correlations, and per quantity the best latent and a MIG-like gap (I1 - I2) / H(q) on 20 "
                    "equal-frequency bins. Train VAEs with different --beta to compare them. hepgen report truncation "
                    "RUN "
                    "--data DATA: the fidelity-diversity curve of a GAN's truncation trick (big-gan, style-gan): per "
                    "--truncation value, FPD and a boosted-tree AUC of physics features (image summary features of "
                    "images) and k-NN precision, density, recall and coverage against DATA.",
        epilog="Quantities: columns of DATA (a table; default all); beside jet images (file.h5:qcd/images) the columns "
               "of file.h5:qcd/features (default mass,tau21); beside a calorimeter layer (showers.h5:layer_1) depth "
               "(energy-weighted mean layer index), frac_0..2, energy and the CaloChallenge features (default "
               "depth,frac_0,frac_1,frac_2,energy); or FILE:KEY with one row per event.")
    report.add_argument("kind", metavar="KIND", choices=KINDS,
                        help="what to report: latents (a vae or conv-vae), truncation (a GAN with a truncation trick)")
    report.add_argument("run", metavar="RUN", help="run directory ('hepgen fit vae ...', 'hepgen fit big-gan ...')")
    report.add_argument("--data", metavar="DATA",
                        help="events to encode (latents) or to compare samples with (truncation), path[:key]; a "
                             "table's model columns are read by name (default: the run's training data, as its "
                             "config.yaml records it)")
    report.add_argument("--report", metavar="DIR", help="the report folder: metrics.json, plots/, index.html")
    add_out(report, "also write the printed summary (JSON) here", metavar="FILE")
    report.add_argument("--quantities", metavar="COLS|FILE:KEY",
                        help="physical quantities per event: names (comma separated) or FILE:KEY (see below)")
    report.add_argument("--context", help="conditional models: columns of DATA, FILE:KEY, or one row 'v1,v2' "
                                          "(default: the model's context columns from DATA)")
    report.add_argument("--events", type=int, default=5000, metavar="N",
                        help="events used, a seeded random subset of DATA (default 5000; the MI estimate costs "
                             "~N log N per latent and quantity)")
    report.add_argument("--top", type=int, default=4, metavar="K", help="latents traversed, by KL (default 4)")
    report.add_argument("--steps", type=int, default=7, metavar="S", help="points per traversal (default 7)")
    report.add_argument("--span", type=float, default=3.0, help="traversal reach in sigma (default 3)")
    report.add_argument("--truncation", metavar="LIST", help="truncation: the values of psi, comma separated, 'none' "
                        "for no truncation (default 0.25,0.5,1,1.5,2,none)")
    report.add_argument("--k", type=int, default=5, help="truncation: neighbours of the k-NN balls (default 5)")
    report.add_argument("--no-auc", dest="no_auc", action="store_true",
                        help="truncation: skip the classifier AUC (the slowest part)")
    add_seed(report, "seed of the event subset and the MI estimator (default 0)")
    add_device(report)
    add_quiet(report, "no messages on stderr")
    report.set_defaults(handler=cmd_report)
    return report


def cmd_report(args: argparse.Namespace, extra: list[str]) -> int:
    """The report of KIND."""
    if args.data is None:
        args.data = training_data(args.run)
    return {"latents": cmd_latents, "truncation": cmd_truncation}[args.kind](args, extra)


def training_data(run: str) -> str:
    """The DATA spec the run was trained on (config.yaml's ``data.events``), when that file is still there: the
    default of ``--data``. A ConfigError asks for ``--data`` otherwise (a run fitted in Python on an array, a
    data-free run, a file moved since)."""
    from collections.abc import Mapping

    from hepgen.data import io
    from hepgen.models import resolve_run
    from hepgen.train.rundir import RunDir

    path = resolve_run(run)
    if not path.exists():
        raise ConfigError(f"run directory {run} does not exist")
    events = (RunDir(path).read_config().get("data") or {}).get("events")
    spec = events.get("spec") if isinstance(events, Mapping) else events
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"{run} records no training file to read again (fitted on an array, or without data); "
                          "give the events with --data DATA")
    if not io.parse_spec(spec)[0].exists():
        raise ConfigError(f"{run} was trained on {spec}, which is not there from here; give the events with "
                          "--data DATA")
    return spec


def _truncations(value: str | None) -> list[float | None]:
    """``--truncation 0.25,0.5,none`` as [0.25, 0.5, None] (ConfigError naming a bad value)."""
    import math

    from hepgen.report.truncation import DEFAULT_TRUNCATIONS
    from hepgen.options import excerpt

    if value is None:
        return list(DEFAULT_TRUNCATIONS)
    out: list[float | None] = []
    for part in (p.strip() for p in value.split(",")):
        if part.lower() in ("none", "off"):
            out.append(None)
            continue
        try:
            psi = float(part)
        except ValueError:
            psi = math.nan
        if not (math.isfinite(psi) and psi >= 0):
            raise ConfigError(f"--truncation {excerpt(value)}: {excerpt(part)} is not a number >= 0 (or 'none')")
        out.append(psi)
    if not out:
        raise ConfigError("--truncation lists no values")
    return out


def cmd_truncation(args: argparse.Namespace, extra: list[str]) -> int:
    """``hepgen report truncation``: the fidelity-diversity curve (module doc)."""
    import inspect

    import numpy as np

    import hepgen
    from hepgen.cli.common import positive, resolve_device

    check_writable(args.out, "-o")
    check_report(args.report)
    positive(args.events, "--events")
    positive(args.k, "--k")
    truncations = _truncations(args.truncation)
    model = hepgen.load(args.run, device=resolve_device(args.device))
    if "truncation" not in inspect.signature(model.sample).parameters:
        raise ConfigError(f"{args.run} holds a {model.cli_name}, which samples without a truncation trick; 'hepgen "
                          "report truncation' needs a GAN that has one (big-gan, style-gan)")
    if isinstance(model.event_shape, dict):
        raise ConfigError(f"'hepgen report truncation' takes a model of one array per event; this {model.cli_name} "
                          "reads several")
    x, _, _ = _events(args.data, model)
    n = len(x)
    context = _context(args.context, model, args.data, n)
    rng = np.random.default_rng(args.seed)
    keep = np.sort(rng.choice(n, size=args.events, replace=False)) if n > args.events else np.arange(n)
    if context is not None and len(context) == n:
        context = context[keep]
    if context is not None and hasattr(model, "check_sample_context"):
        model.check_sample_context(context, args.context or args.data, 0)
    from hepgen.report.truncation import truncation_curve

    rows = truncation_curve(model, x[keep], context, truncations, k=args.k, seed=args.seed,
                            classifier_auc=not args.no_auc)
    inputs = {"run": args.run, "data": args.data, "model": model.cli_name, "events_in_data": n,
              "events_used": int(len(keep)), "k": args.k, "seed": args.seed}
    if args.report:
        from hepgen.report.truncation import truncation_report

        truncation_report(rows, args.report, title=f"truncation curve of {args.run} on {args.data}",
                          meta=[f"model {model.cli_name}, {len(keep)} events, k = {args.k}"], inputs=inputs)
    from hepgen.report.folder import dumps

    emit_result(dumps({"curve": rows, "inputs": inputs}).rstrip("\n"), args.out)
    if args.report and not args.quiet:
        print(f"report: {args.report}/index.html", file=sys.stderr)
    return 0


def cmd_latents(args: argparse.Namespace, extra: list[str]) -> int:
    import math

    import numpy as np

    import hepgen
    from hepgen.cli.common import positive, resolve_device

    check_writable(args.out, "-o")
    check_report(args.report)
    positive(args.events, "--events")
    positive(args.top, "--top")
    if args.steps < 2:
        raise ConfigError(f"--steps must be at least 2 (both ends of a traversal), got {args.steps}")
    if not (math.isfinite(args.span) and args.span > 0):
        raise ConfigError(f"--span must be a positive number of sigma, got {args.span}")
    model = hepgen.load(args.run, device=resolve_device(args.device))
    if not hasattr(model, "posterior") or not hasattr(model, "latent"):
        raise ConfigError(f"{args.run} holds a {model.cli_name}; 'hepgen report latents' needs a VAE (vae or conv-vae: "
                          f"its posterior's KL ranks the latents). Fit one with 'hepgen fit vae DATA --beta B'")
    x, names, table = _events(args.data, model)
    n = len(x)
    quantities, q_names, q_source = _quantities(args.quantities, args.data, table, n)
    context = _context(args.context, model, args.data, n)
    rng = np.random.default_rng(args.seed)
    keep = np.sort(rng.choice(n, size=args.events, replace=False)) if n > args.events else np.arange(n)
    from hepgen.evaluate.latents import disentanglement
    from hepgen.report.latents import latents_report

    if context is not None and len(context) == n:
        context = context[keep]
    analysis = disentanglement(model, x[keep], None if quantities is None else quantities[keep], q_names,
                               context=context, top_k=args.top, steps=args.steps, span=args.span, seed=args.seed)
    inputs = {"run": args.run, "data": args.data, "model": model.cli_name, "events_in_data": n,
              "events_used": int(len(keep)), "quantities_from": q_source}
    if args.report:
        tabular = x.ndim == 2
        latents_report(analysis, args.report, title=f"latents of {args.run} on {args.data}",
                       meta=[f"model {model.cli_name}, quantities from {q_source or 'none'}"], inputs=inputs,
                       feature_names=names if tabular else None,
                       feature_mean=x[keep].mean(axis=0) if tabular else None,
                       feature_std=x[keep].std(axis=0) if tabular else None)
    summary = {"beta": analysis.beta, "active_latents": int((analysis.kl > 0.01).sum()),
               "latents_by_kl": [f"z{l}" for l in analysis.order[:args.top]],
               "kl": {f"z{l}": float(analysis.kl[l]) for l in analysis.order[:args.top]}}
    if analysis.matrices is not None:
        summary["summary"] = analysis.matrices.summary
    from hepgen.report.folder import dumps

    emit_result(dumps(summary).rstrip("\n"), args.out)
    if args.report and not args.quiet:
        print(f"report: {args.report}/index.html", file=sys.stderr)
    return 0


def _events(spec: str, model: Any) -> tuple[Any, list[str] | None, Any]:
    """(events (n, *event_shape) float64, the model's feature names or None, the Table read) from DATA (read once),
    a table's columns by name."""
    import numpy as np

    from hepgen.cli.columns import feature_names
    from hepgen.data import io

    if isinstance(model.event_shape, dict):
        raise ConfigError(f"'hepgen report latents' takes a VAE of one array per event; this {model.cli_name} "
                          "reads several")
    table = io.read(spec)
    names = feature_names(model)
    data = table.data
    if table.columns is not None and names is not None and table.columns != names:
        missing = [c for c in names if c not in table.columns]
        if missing and names[0] != "x0":
            raise DataError(f"'{spec}' has no column '{missing[0]}' of the model's features ({', '.join(names)}); its "
                            f"columns: {', '.join(table.columns)}")
        if not missing:
            data = data[..., [table.columns.index(c) for c in names]]
    if tuple(data.shape[1:]) != tuple(model.event_shape):
        raise DataError(f"{spec}: events of shape {tuple(data.shape[1:])}, but the model was trained on events of "
                        f"shape {tuple(model.event_shape)}")
    return np.asarray(data, dtype=np.float64), names if len(model.event_shape) == 1 else None, table


def _context(value: str | None, model: Any, data: str, n: int) -> Any:
    """The context rows (n, c) or one row (1, c) of a conditional VAE, or None."""
    import numpy as np

    from hepgen.cli.columns import context_source

    source = context_source(value, model, data=data)
    if source is None:
        return None
    if not hasattr(source, "read_rows"):
        return np.asarray(source, dtype=np.float64)
    try:
        if len(source) != n:
            raise DataError(f"the context has {len(source)} rows but {data} has {n} events")
        return np.asarray(source.read_rows(0, n), dtype=np.float64).reshape(n, -1)
    finally:
        source.close()


def _sibling_features(spec: str) -> tuple[str, Any] | None:
    """(spec, table) of the jets' ``features`` dataset in DATA's group (``f.h5:qcd/images`` -> ``f.h5:qcd/features``)."""
    from hepgen.data import io

    path, key = io.parse_spec(spec)
    key = (key or "").strip("/")
    group = key.rpartition("/")[0]
    sibling = f"{group}/features" if group else "features"
    if not key or sibling == key:
        return None
    try:
        if sibling not in io.available_keys(path):
            return None
    except Exception:  # noqa: BLE001 - a format without keys: no sibling
        return None
    table = io.read(f"{path}:{sibling}")
    return (f"{path}:{sibling}", table) if table.columns else None


def _shower_quantities(spec: str) -> tuple[str, dict[str, Any]] | None:
    """(spec of the shower file, {name: (n,)}) when DATA is a layer of a shower file, else None."""
    import numpy as np

    from hepgen.calo.shower_layout import find_layout, read_showers
    from hepgen.data import io
    from hepgen.metrics.shower_observables import shower_features

    path, key = io.parse_spec(spec)
    group = (key or "").strip("/").rpartition("/")[0]
    where = f"{path}:{group}" if group else str(path)
    try:
        if find_layout(where) is None:
            return None
    except Exception:  # noqa: BLE001 - not an HDF5 file: no showers
        return None
    showers = read_showers(where)
    values = shower_features(showers.list(), showers.energy)
    fracs = np.stack([values[f"frac_{k}"] for k in range(len(showers.layers))])
    depth = (np.arange(len(fracs))[:, None] * fracs).sum(axis=0)
    return where, {"depth": depth, **{k: v for k, v in values.items() if k.startswith("frac_")},
                   "energy": showers.energy, **values}


def _quantities(value: str | None, spec: str, table: Any, n: int) -> tuple[Any, list[str] | None, str | None]:
    """(quantities (n, Q), their names, where they came from) for ``--quantities`` (module docstring)."""
    import numpy as np

    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if value is not None and not is_column_name(value):  # FILE:KEY
        table = io.read(value)
        q = np.asarray(table.data, dtype=np.float64)
        q = q.reshape(len(q), -1)
        if len(q) != n:
            raise DataError(f"--quantities {value}: {len(q)} rows, but {spec} has {n} events; one row per event")
        q_names = table.columns if table.columns and len(table.columns) == q.shape[1] else \
            [f"q{j}" for j in range(q.shape[1])]
        return q, list(q_names), value
    wanted = None if value is None else [c.strip() for c in value.split(",") if c.strip()]
    # what DATA offers: its own columns, the jets' features beside images, the showers' quantities beside a layer
    available: dict[str, Any] = {}
    source, defaults = None, None
    if table.columns:  # DATA is a named table: its columns (default: those the model reads)
        available = {c: table.column(c) for c in table.columns}
        source, defaults = spec, list(table.columns)
    if not available:
        sibling = _sibling_features(spec)
        if sibling is not None:
            where, table = sibling
            available = {c: table.column(c) for c in table.columns}
            source, defaults = where, [c for c in JET_DEFAULTS if c in available]
        else:
            showers = _shower_quantities(spec)
            if showers is not None:
                source, available = showers
                defaults = list(SHOWER_DEFAULTS)
    if wanted is None:
        if not defaults:
            return None, None, None
        wanted = defaults
    missing = [c for c in wanted if c not in available]
    if missing:
        have = f"it offers {', '.join(available)}" if available else (
            "it offers none (not a named table, no features dataset beside it, not a shower layer); give FILE:KEY")
        raise DataError(f"--quantities: no quantity '{missing[0]}' for {spec} ({have})")
    q = np.column_stack([np.asarray(available[c], dtype=np.float64).reshape(-1) for c in wanted])
    if len(q) != n:
        raise DataError(f"--quantities from {source}: {len(q)} rows, but {spec} has {n} events")
    bad = ~np.isfinite(q)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{source}: quantity '{wanted[col]}' is NaN or infinite at row {row}")
    return q, wanted, source
