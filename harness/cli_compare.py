"""`repro compare A B [--where K=V ...]`: does one factor change SIDE, MAD, spikes, divergence?

A thin Click wrapper over harness.compare; the main CLI mounts it as `compare`.
"""
from __future__ import annotations

import json
import logging
import sys

import click

from harness.cli_options import existing_results_option
from harness.exitcodes import ExitCode

__all__ = ["compare_command"]


@click.command("compare")
@click.argument("group_a", metavar="FACTOR=A")
@click.argument("group_b", metavar="FACTOR=B")
@click.option("--where", multiple=True, metavar="KEY=VALUE", help="Keep only cells with this value; repeat it.")
@existing_results_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable effects.")
def compare_command(group_a, group_b, where, results, as_json):
    """Compare two groups of cells that differ in one factor, with 95% intervals over seeds.

    Example: repro compare tf32=false tf32=true --where stack=cpu
    """
    from harness.collect import collect
    from harness.compare import FLOOR_FACTOR, CompareError, chaos_floor, compare
    log = logging.getLogger("repro")
    df = collect(results).table
    try:
        result = compare(df, group_a, group_b, where=where)
    except CompareError as err:
        log.error("compare: %s", err)
        sys.exit(ExitCode.SELECTION_ERROR)
    floor = chaos_floor(df, group_a, where=where)
    if as_json:
        click.echo(json.dumps({"verdict": result.verdict, "effects": [e.to_dict() for e in result.effects],
                               "chaos_floor": floor and [e.to_dict() for e in floor.effects]}, indent=2))
    else:
        click.echo(_render(result))
        if result.factor != FLOOR_FACTOR:  # the floor of the floor is itself
            click.echo(_render_floor(floor, group_a))
    sys.exit(ExitCode.OK)


def _render(result) -> str:
    from harness.failure import KINDS, describe_rate  # scipy: imported when used, so every `repro` starts fast
    table = result.table()
    shown = table[["n_a", "n_b", "mean_a", "mean_b", "diff", "low", "high", "p", "test", "lost_a", "lost_b"]]
    seeds = "seeds %s vs %s" % (list(result.seeds_a), list(result.seeds_b))
    rates = ["%s: %s vs %s" % (e.metric, describe_rate(round(e.mean_a * e.n_a), e.n_a),
                               describe_rate(round(e.mean_b * e.n_b), e.n_b))
             for e in result.effects if e.metric in ("failed",) + KINDS]
    return "\n".join([shown.to_string(float_format=lambda v: "%.4g" % v), seeds] + rates + [result.verdict]
                     + ([result.stale_note] if result.stale_note else []))


def _render_floor(floor, group_a: str) -> str:
    """One line: what one ulp at initialisation alone does to group A's cells."""
    if floor is None:
        return ("chaos floor: no perturb_init=true cells match group %s (add them to the study: the floor "
                "is what a factor's effect is read against)" % group_a)
    from harness.failure import describe_rate
    parts = ["%s %+.3g [%.3g, %.3g]" % (e.metric, e.diff, e.low, e.high) for e in floor.effects
             if e.metric in ("SIDE", "MAD")]
    parts += ["failed %s -> %s" % (describe_rate(round(e.mean_a * e.n_a), e.n_a), describe_rate(round(e.mean_b * e.n_b), e.n_b))
              for e in floor.effects if e.metric == "failed"]
    return "chaos floor (group %s, netD's first weight one ulp up; %d vs %d seeds): %s" % (
        group_a, len(floor.seeds_a), len(floor.seeds_b), "; ".join(parts))
