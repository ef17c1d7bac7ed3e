"""`uniarm compare`: the paper comparison, every method trained and swept under matched settings.

    uniarm compare --task safety --scale tiny          # minutes: proves the pipeline
    uniarm compare --task safety --scale small         # the CPU study (~2 h on 2 cores)
    uniarm compare --task assistant --scale small --methods base uniarm parm genarm
    uniarm compare --task safety --scale paper         # the paper's settings, for GPUs
    uniarm compare ... --strong-base MODEL_FOLDER      # add the weak-to-strong rows

Stages are cached in the study folder (runs/compare/<task>-<scale>): run the same command
again to resume an interrupted study or to reuse a finished one. Writes
<results-dir>/compare-<task>[-<scale>].json, .md and .png; other results already there are
kept unless --overwrite (then moved aside). `bench/compare.py` is the same command.
"""

from __future__ import annotations

import argparse

from uniarm import config as cfg


def register(subparsers) -> None:
    from uniarm.baselines.study import StudyConfig

    parser = subparsers.add_parser(
        "compare",
        help="train and evaluate every method of the paper; write HV / MIP tables and plots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cfg.add_arguments(parser, StudyConfig)
    parser.set_defaults(func=run)


def run(args) -> int:
    from uniarm.baselines.study import StudyConfig, results_stem, run_study

    study = cfg.from_namespace(StudyConfig, args)
    results = run_study(study, quiet=args.quiet)
    print_results(results, study.results_dir, results_stem(study))
    return 0


def _pm(stat) -> str:
    if not stat or stat["mean"] is None:
        return "-"
    return f"{stat['mean']:.4g}" + ("" if stat["std"] is None else f" ± {stat['std']:.2g}")


def print_results(results: dict, folder, stem: str) -> None:
    ref = ", ".join(f"{v:g}" for v in results["reference"])
    print(
        f"\n{results['task']} task, {results['scale']} scale; oracle: {results['oracle']}; "
        f"HV reference ({ref})"
    )
    for label, e in {**results["methods"], **results["weak_to_strong"].get("methods", {})}.items():
        speed = e["decoding_tokens_per_s"]["mean"]
        print(
            f"{label:>18}  HV {_pm(e['hypervolume']):>18}  MIP {_pm(e['mean_inner_product']):>18}"
            f"  params {e['trainable_parameters'] or 0:>9,}"
            f"  {'-' if speed is None else f'{speed:.1f}':>6} tok/s"
        )
    for c in results["claims"][:1]:
        hv, mip = c["hypervolume"], c["mean_inner_product"]
        print(
            f"\n{c['method']} vs {c['against']}: HV {hv['relative_pct']:+.1f}% ({hv['verdict']}), "
            f"MIP {mip['relative_pct']:+.1f}% ({mip['verdict']})"
            if hv["relative_pct"] is not None and mip["relative_pct"] is not None
            else f"\n{c['method']} vs {c['against']}: {hv['verdict']}"
        )
    if not results["weak_to_strong"].get("methods"):
        print(f"weak-to-strong: {results['weak_to_strong']['status']}")
    print(f"\nresults: {folder}/{stem}.json, .md, .png")
