"""Table 3 of the seed report, regenerated from the tidy table (never from files).

Rows are CUDA version x implementation (Ours / Author's) as in the seed, plus
our CPU stack and any other stack present; each row names its dataset and the
numerics its cells ran with (env.json in_force). Columns are SIDE (x1e-2) and MAD
(deg., the original's formula, as published) as mean +- std over seeds of each
cell's test-set mean (sample std, ddof=1; a single seed shows no +-) and, like for
like with the published numbers, mean +- each run's spread over test images
averaged over seeds; the exact angle beside it (no floor); the number of seeds and
of test images with an empty mask; and - for the table without clipping - the
seed's published numbers, beside rows trained on synface only (others say
"different data"). A row without numbers says why (skipped, failed, diverged, not run).
"""
from __future__ import annotations

import collections
import hashlib
import math
from pathlib import Path

import pandas as pd

from model.config import STANDIN

from ..failure import MAD_MARGIN, describe_rate, with_failures
from ..fsutil import atomic_write
from .envdiff import PER_RUN_KEYS, cpu_stacks, stack_env_differences
from .ran import RAN_FOOTNOTE, describe, is_smoke
from .rows import IMPL_NAMES, row_order, variant_axes
from .state import Memo, row_keys

__all__ = ["SEED_CSV", "seed_table", "stack_label", "clip_modes", "table3", "format_rows",
           "to_markdown", "to_latex", "write_tables", "title", "FOOTNOTES", "footnotes", "PERCEPTUAL_MARK",
           "SMOKE_MARK"]

SEED_CSV = Path(__file__).with_name("seed_table3.csv")
PERCEPTUAL_MARK = "†"   # marks rows where some cell trained without the perceptual loss (counted in notes)
SMOKE_MARK = "smoke check, not a score"   # after the label of a row harness.report.ran calls smoke


def seed_table() -> pd.DataFrame:
    """The seed's published Table 3 (harness/report/seed_table3.csv, cited in its header)."""
    seed = pd.read_csv(SEED_CSV, comment="#", dtype={"cuda": str})
    seed["row"] = "CUDA " + seed["cuda"]
    return seed


def stack_label(stack: str | None, cuda: str | None) -> str:
    """'CUDA 11.3' for a CUDA stack, 'CPU' for the cpu stack (cuda unknown: the stack name)."""
    if stack == "cpu":
        return "CPU"
    if cuda and str(cuda).lower() not in ("none", "nan", "cpu"):
        return f"CUDA {cuda}"
    return str(stack)


def clip_modes(df: pd.DataFrame) -> list[str]:
    """Clipping modes to tabulate: 'none' (the seed's) and each one run ('norm' if none ran)."""
    ran = sorted({str(c) for c in df.get("clip", pd.Series(dtype=str)).dropna()} - {"none"})
    return ["none"] + (ran or ["norm"])


def _cell_why(cell) -> str:
    """Why one cell gave no SIDE/MAD, in a few words."""
    state, reason = cell["state"], cell["reason"] if isinstance(cell["reason"], str) else ""
    reason = reason.strip().splitlines()[-1][:80] if reason.strip() else ""
    if state == "diverged" and pd.notna(cell["diverged_iter"]):
        net = f" in {cell['diverged_net']}" if isinstance(cell["diverged_net"], str) else ""
        return f"diverged at iter {int(cell['diverged_iter'])}{net}"
    if state == "done":
        problems = cell["problems"] if isinstance(cell["problems"], str) else "no SIDE/MAD"
        return f"done, but {problems}"
    return f"{state}: {reason}" if reason else state


def _why(cells: pd.DataFrame) -> str:
    """Why-strings of several cells, identical ones counted: 'skipped: needs a GPU (x3)'."""
    counts = collections.Counter(_cell_why(c) for _, c in cells.iterrows())
    return "; ".join(why if n == 1 else f"{why} (x{n})" for why, n in counts.most_common())


def _stats(values: pd.Series) -> tuple[float, float]:
    std = values.std(ddof=1) if len(values) > 1 else math.nan
    return float(values.mean()), float(std)


def _aggregate(cells: pd.DataFrame) -> dict:
    """One Table 3 row from the cells of one (stack, impl, variant): mean +- std over seeds."""
    ok = cells[(cells["state"] == "done") & cells["side_mean"].notna() & cells["mad_published_mean"].notna()]
    # several cells of one seed (e.g. attempts) count once: average them first
    per_seed = ok.groupby(ok["seed"].map(str))[["side_mean", "mad_published_mean", "mad_mean"]].mean()
    side, side_std = _stats(per_seed["side_mean"] * 100)
    mad, mad_std = _stats(per_seed["mad_published_mean"])
    mad_exact, mad_exact_std = _stats(per_seed["mad_mean"])
    # the seed report's ± is the spread over test images of one run: average it over seeds
    per_seed_img = ok.groupby(ok["seed"].map(str))[["side_std", "mad_published_std"]].mean()
    side_img_std = float(per_seed_img["side_std"].mean() * 100) if len(per_seed_img) else math.nan
    mad_img_std = float(per_seed_img["mad_published_std"].mean()) if len(per_seed_img) else math.nan
    others = cells.drop(ok.index)
    note = _why(others) if len(others) else ""
    if len(ok) and note:
        note = f"{len(per_seed)} of {cells['seed'].map(str).nunique()} seeds; " + note
    stale = _stale(ok)
    if stale:
        note = "; ".join(filter(None, [stale, note]))
    without, trained = _no_perceptual(cells)
    if without:
        note = "; ".join(filter(None, [f"{PERCEPTUAL_MARK} no perceptual loss in {without} of {trained} cells", note]))
    standin = int((cells["perceptual_net"] == STANDIN).sum())
    if standin:
        note = "; ".join(filter(None, [f"perceptual loss from a STAND-IN (random VGG16) in {standin} cells", note]))
    # a model that has learned nothing predicts one depth: the floor any row must beat
    flat_side = float(ok["flat_side_mean"].mean() * 100) if "flat_side_mean" in ok else math.nan
    flat_mad = float(ok["flat_mad_published_mean"].mean()) if len(ok) else math.nan
    unscored = ok["n_unscored"].fillna(0).sum() if len(ok) else math.nan
    scored = (ok["n_images"].fillna(0) + ok["n_unscored"].fillna(0)).sum() if len(ok) else math.nan
    return {"n_seeds": len(per_seed), "n_cells": len(cells), "side": side, "side_std": side_std,
            "mad": mad, "mad_std": mad_std, "mad_exact": mad_exact, "mad_exact_std": mad_exact_std,
            "n_unscored": unscored, "n_test": scored, "dataset": _distinct(cells, "dataset"),
            "numerics": numerics_label(cells), "failed": _failed(cells), "side_img_std": side_img_std,
            "mad_img_std": mad_img_std, "note": note, "flat_side": flat_side, "flat_mad": flat_mad,
            "n_no_perceptual": without, "n_trained": trained, "ran": describe(cells), "smoke": is_smoke(cells),
            **_spikes(cells)}


def _aggregate_once(cells: pd.DataFrame, memo: Memo | None, keys: pd.Series | None) -> dict:
    """_aggregate(cells), from memo when the same rows (keys: state.row_keys) were aggregated before."""
    if memo is None:
        return _aggregate(cells)
    key = hashlib.sha1(keys[cells.index].to_numpy().tobytes() + repr(list(cells.columns)).encode()).hexdigest()
    return memo.get(key, lambda: _aggregate(cells))


def _failed(cells: pd.DataFrame) -> str:
    """'1/3 (33%, 95% CI 1-91%)': the row's ended cells that failed (harness/failure.py)."""
    outcome = with_failures(cells)["failed"].dropna()
    return describe_rate(int(outcome.sum()), len(outcome))


def _distinct(cells: pd.DataFrame, column: str) -> str:
    values = cells[column].dropna().map(str).unique() if column in cells else []
    return "/".join(sorted(values))


# in_force value -> how a row label says it (model/factors.py IN_FORCE_KEYS)
def _numerics_parts(row) -> list[str]:
    tf32 = [k for k, col in (("conv", "in_force.tf32_conv"), ("matmul", "in_force.tf32_matmul"))
            if row.get(col) == "True"]
    parts = ["TF32 " + "+".join(tf32) if tf32 else "no TF32",
             f"align_corners {row.get('in_force.align_corners')}",
             "benchmark on" if row.get("in_force.cudnn_benchmark") == "True" else "benchmark off",
             f"deterministic {row.get('in_force.deterministic')}",
             "NMR" if row.get("in_force.renderer") == "nmr" else "our renderer"]
    return parts


def numerics_label(cells: pd.DataFrame) -> str:
    """'no TF32, align_corners False, benchmark off, deterministic off, our renderer' from the
    cells' env.json in_force (what ran); '' where no cell recorded it, 'mixed: ...' where they differ."""
    columns = [c for c in cells.columns if c.startswith("in_force.")]
    known = cells[cells[columns].notna().any(axis=1)] if columns else cells.iloc[0:0]
    if known.empty:
        return ""
    labels = sorted({", ".join(_numerics_parts(r)) for r in known[columns].to_dict("records")})
    return labels[0] if len(labels) == 1 else "mixed: " + " | ".join(labels)


def _spikes(cells: pd.DataFrame) -> dict:
    """Spikes per trained cell (harness/spikes.py) and the share of steps clipping acted on."""
    ended = cells[cells["state"].isin(("done", "diverged"))]
    spikes = ended["n_spikes"].astype(float) if "n_spikes" in ended else pd.Series(dtype=float)
    clipped = ended["clipped_frac"].astype(float) if "clipped_frac" in ended else pd.Series(dtype=float)
    return {"spikes": float(spikes.mean()) if spikes.notna().any() else math.nan,
            "clipped": float(clipped.mean()) if clipped.notna().any() else math.nan}


def _stale(ok: pd.DataFrame) -> str:
    """'2 of 3 cells stale (model/step.py changed)': the row's scores mix in results of other code."""
    flags = ok["stale"].astype("boolean").fillna(False) if "stale" in ok else pd.Series(False, index=ok.index)
    if not flags.any():
        return ""
    reasons = sorted({str(r) for r in ok.loc[flags, "stale_reason"].dropna()})
    return f"{int(flags.sum())} of {len(ok)} cells stale ({'; '.join(reasons)})"


def _no_perceptual(cells: pd.DataFrame) -> tuple[int, int]:
    """(cells that trained without the perceptual loss, cells that trained: not skipped/queued)."""
    trained = cells[~cells["state"].isin(("skipped", "queued"))]
    return int((trained["perceptual"] == False).sum()), len(trained)  # noqa: E712 (None stays unknown)


def _empty_row(label: str, impl: str) -> dict:
    return {"row": label, "impl": impl, "variant": "", "n_seeds": 0, "n_cells": 0,
            "side": math.nan, "side_std": math.nan, "mad": math.nan, "mad_std": math.nan,
            "mad_exact": math.nan, "mad_exact_std": math.nan, "n_unscored": math.nan, "n_test": math.nan,
            "dataset": "", "numerics": "", "failed": "-",
            "side_img_std": math.nan, "mad_img_std": math.nan, "flat_side": math.nan, "flat_mad": math.nan,
            "note": "not run", "n_no_perceptual": 0, "n_trained": 0, "ran": "", "smoke": False, "spikes": math.nan,
            "clipped": math.nan}


def table3(df: pd.DataFrame, clip: str = "none", memo: Memo | None = None,
           keys: pd.Series | None = None) -> pd.DataFrame:
    """Table 3 for one clipping mode.

    Args:
        df: the tidy table from harness.collect.collect, with harness.report.ran.with_ran's
            columns for the `ran` label (without them the label is empty).
        clip: 'none' (the seed's setting) or a clip mode run ('norm', 'value').
        memo: rows aggregated before, by the keys of their cells' rows (a row whose cells did not
            change is not aggregated again); keys: state.row_keys of df, when the caller has them.

    Returns:
        One row per (stack label, impl, variant) with columns row, impl, variant,
        clip, n_seeds, n_cells, side (x1e-2), side_std, mad (deg), mad_std (over
        seeds), side_img_std, mad_img_std (over test images, averaged over seeds),
        n_no_perceptual (cells that trained without the perceptual loss), n_trained (cells that
        started: not skipped or queued), ran (what the cells ran),
        smoke (a smoke check, not a score), note, and seed_side/seed_side_std/seed_mad/seed_mad_std
        (the published values; NaN where the seed has none or clip != 'none').
    """
    cells = df[df["clip"].map(str) == clip] if len(df) else df
    variants = variant_axes(df) if len(df) else []
    if memo is not None and keys is None:
        keys = pd.Series(row_keys(df), index=df.index, dtype="uint64")
    rows = []
    for key, group in (cells.groupby(["stack", "impl"] + variants, dropna=False, sort=False)
                       if len(cells) else []):
        label = stack_label(key[0], group["stack_cuda"].dropna().iloc[0]
                            if group["stack_cuda"].notna().any() else None)
        # the preset is part of `ran`, read from what the cells ran, not from the matrix's override
        variant = ", ".join(f"{a.removeprefix('axis.')}={v}" for a, v in zip(variants, key[2:]) if a != "preset")
        rows.append({"row": label, "impl": str(key[1]), "variant": variant, **_aggregate_once(group, memo, keys)})
    seen = {(r["row"], r["impl"]) for r in rows}
    wanted = [(r, i) for r, i in zip(seed_table()["row"], seed_table()["impl"])] + [("CPU", "ours")]
    rows += [_empty_row(label, impl) for label, impl in wanted if (label, impl) not in seen]
    rows.sort(key=lambda r: row_order(r["row"], r["impl"]) + (r["variant"],))
    table = pd.DataFrame(rows)
    table.insert(3, "clip", clip)
    return _with_seed(table, clip)


SEED_DATASET = "synface"   # what the seed's Table 3 trained and tested on


def _with_seed(table: pd.DataFrame, clip: str) -> pd.DataFrame:
    """The seed's numbers beside rows of its data only; other rows with a seed entry say
    `seed_other_data` (they are not like for like)."""
    seed = seed_table().rename(columns={"side_mean": "seed_side", "side_std": "seed_side_std",
                                        "mad_mean": "seed_mad", "mad_std": "seed_mad_std"})
    seed = seed[seed["clip"] == clip][["row", "impl", "seed_side", "seed_side_std", "seed_mad",
                                       "seed_mad_std"]]
    table = table.merge(seed, on=["row", "impl"], how="left")
    published = table["seed_side"].notna() | table["seed_mad"].notna()
    other = published & table["dataset"].ne("") & table["dataset"].ne(SEED_DATASET)
    table["seed_other_data"] = other
    table.loc[other, ["seed_side", "seed_side_std", "seed_mad", "seed_mad_std"]] = math.nan
    return table


# --------------------------------------------------------------------------- formatting

def _pm(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")


OTHER_DATA = "different data"   # the seed column of a row not trained on the seed's synface


def format_rows(table: pd.DataFrame, with_seed: bool) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the Markdown, LaTeX and HTML renderings."""
    header = ["Stack", "Impl.", "SIDE (×10⁻²) ± images¹", "MAD (deg.) ± images¹"]
    header += ["seed report SIDE ± images", "seed report MAD ± images"] if with_seed else []
    header += ["SIDE ± seeds²", "MAD ± seeds²", "MAD exact angle³", "seeds", "failed runs⁵", "empty masks⁴",
               "flat depth SIDE / MAD", "spikes / clipped", "notes"]
    rows = []
    for r in table.itertuples():
        impl = IMPL_NAMES.get(r.impl, r.impl) + (f" {PERCEPTUAL_MARK}" if r.n_no_perceptual else "")
        data = f"data {r.dataset}" if r.dataset else ""
        detail = "; ".join(d for d in (", ".join(d for d in (r.variant, r.ran) if d), data, r.numerics) if d)
        stack = r.row + (f" ({detail})" if detail else "") + (f" [{SMOKE_MARK}]" if r.smoke else "")
        cells = [stack, impl, _pm(r.side, r.side_img_std, 4), _pm(r.mad, r.mad_img_std, 2)]
        if with_seed:
            seed = [_pm(r.seed_side, r.seed_side_std, 4), _pm(r.seed_mad, r.seed_mad_std, 2)]
            cells += [OTHER_DATA, OTHER_DATA] if r.seed_other_data else seed
        unscored = "-" if math.isnan(r.n_unscored) else f"{int(r.n_unscored)} of {int(r.n_test)}"
        cells += [_pm(r.side, r.side_std, 4), _pm(r.mad, r.mad_std, 2), _pm(r.mad_exact, r.mad_exact_std, 2),
                  str(r.n_seeds), r.failed, unscored]
        flat = "-" if math.isnan(r.flat_side) else f"{r.flat_side:.4f} / {r.flat_mad:.2f}"
        clipped = "-" if math.isnan(r.clipped) else f"{100 * r.clipped:.0f}%"
        spikes = "-" if math.isnan(r.spikes) else f"{r.spikes:.1f} / {clipped}"
        rows.append(cells + [flat, spikes, r.note])
    return header, rows


def title(clip: str) -> str:
    """Caption of one table, in the seed's words."""
    if clip == "none":
        return "Table 3. Ablation on CUDA versions (trained without gradient clipping)."
    return f"Table 3 (with clipping: {clip}). Ablation on CUDA versions, gradients clipped ({clip})."


FOOTNOTES = (
    "¹ ± images (like for like with the seed report and the paper, whose ± is the spread over "
    "the test images of one run): each run's std over its test images, averaged over seeds; "
    "the value is the mean over seeds of each run's test-set mean.",
    "² ± seeds: sample std (ddof=1) over seeds of each run's test-set mean; no ± with one seed. "
    "SIDE ×10⁻², MAD in degrees. MAD is the original's formula, as the seed report and the paper computed it: "
    "acos of the dot product of normals divided by (|n| + 1e-7), for Ours and Author's alike.",
    "³ The exact angle between the same normals (atan2 of cross and dot product, float64), ± seeds: "
    "identical depths score 0 by it, while the published formula has a floor (its normals are "
    "short by about 1e-7/|n|, |n| ~ 3e-5 at 64 px): see the floor note below.",
    "⁴ Test images whose eroded mask is empty (no pixel to score), over all test images of the row's "
    "done cells; they are left out of the means, as in the original.",
    "⁵ Runs that ended (done or diverged) and failed: went non-finite, spiked, or ended no better than "
    f"flat depth (SIDE at or above flat's, or MAD within {100 * MAD_MARGIN:.0f}% of it; harness/failure.py), with the "
    "exact (Clopper-Pearson) 95% interval of the rate. The means beside it use the runs that finished.",
    f"Seed report values stand beside rows trained on {SEED_DATASET}, the seed's data; a row on other "
    f"data (the built-in faces) says '{OTHER_DATA}': those numbers do not compare.",
    f"{PERCEPTUAL_MARK}: no perceptual loss: the notes count the row's cells that trained without the "
    "perceptual (VGG16) loss, as the original never does (no weights where they ran: env.json "
    "perceptual_reason says why, docker/README.md how to provide them); the row's numbers include them.",
    "Flat depth: SIDE/MAD of one constant depth on the same test images, scored the same way; "
    "a row that does not beat it has not learned depth.",
    "Spikes / clipped: logged steps per trained cell whose loss or pre-clip gradient norm is non-finite or "
    "over k x its running median (harness/spikes.py; k in the report's notes), and the share of steps on which "
    "clipping changed the gradient.",
    "Stale: the row's scores include cells trained by other code than would run them now (their env.json "
    "records a digest of each model/ file; `repro status --why CELL` names the files, `repro run --rerun-stale` "
    "retrains them).",
    "Seed report values: Table 3 of the seed report (harness/report/seed_table3.csv), trained "
    "without clipping; its ± is read as the spread over test images (its text gives 0.7792 ± "
    "0.1387 for one run, as the paper's 0.793 ± 0.140), so compare it with the ¹ columns.",
)


def footnotes(df: pd.DataFrame) -> list[str]:
    """The fixed footnotes, what the labels mean, and what differs between the CPU rows (from the data)."""
    notes = list(FOOTNOTES) + [RAN_FOOTNOTE] + _floor_note(df)
    stacks = cpu_stacks(df)
    if len(stacks) > 1:
        notes.append(_cpu_rows_note(df, stacks))
    return notes


def _floor_note(df: pd.DataFrame) -> list[str]:
    """What identical depths score by the published MAD on these test sets (eval.json
    mad_published_floor), per image size the cells ran."""
    if "mad_published_floor" not in df or df["mad_published_floor"].isna().all():
        return []
    floors = df[df["mad_published_floor"].notna()]
    sizes = floors["ran.image_size"] if "ran.image_size" in floors else pd.Series("?", index=floors.index)
    parts = [f"{g['mad_published_floor'].mean():.2f} deg at {size} px"
             for size, g in floors.groupby(sizes.map(str), sort=True)]
    return ["Floor of the published MAD: identical depths (each cell's ground truth against itself) score "
            + ", ".join(parts) + " on these test sets; the exact angle scores 0."]


def _short(value: str, width: int = 48) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def _cpu_rows_note(df: pd.DataFrame, stacks: list[str]) -> str:
    """Which env.json keys differ between the CPU stacks' cells (constant within each stack)."""
    labels = [stack_label(s, None) for s in stacks]
    differences = stack_env_differences(df, stacks)
    head = f"CPU rows ({' vs '.join(labels)}): "
    if not differences:
        return head + "their cells' env.json agree on every key that is constant within a stack."
    keys = "; ".join(f"{key} " + " vs ".join(_short(values[s]) for s in stacks) for key, values in differences)
    return (head + f"env.json keys that differ between their cells ({len(differences)}): {keys}. "
            f"Left out: keys that vary between cells of one stack, and {', '.join(PER_RUN_KEYS)}.")


def to_markdown(tables: dict[str, pd.DataFrame], notes: list[str] | None = None) -> str:
    """All tables (clip mode -> table) as one Markdown document; notes default to FOOTNOTES."""
    parts = []
    for clip, table in tables.items():
        header, rows = format_rows(table, with_seed=clip == "none")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        parts.append(f"### {title(clip)}\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"- {f}" for f in (notes or FOOTNOTES)) + "\n"


# order matters: plain specials first, then the ones whose replacement uses $ { }
_TEX = {"{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
        "±": r"$\pm$", "×10⁻²": r"$\times 10^{-2}$", "†": r"$^\dagger$",
        "¹": r"$^1$", "²": r"$^2$", "³": r"$^3$", "⁴": r"$^4$", "⁵": r"$^5$"}  # after ×10⁻², which contains a ²


def _tex(text: str) -> str:
    for raw, escaped in _TEX.items():
        text = text.replace(raw, escaped)
    return text


def to_latex(tables: dict[str, pd.DataFrame]) -> str:
    """All tables as LaTeX (booktabs) table environments."""
    parts = []
    for clip, table in tables.items():
        header, rows = format_rows(table, with_seed=clip == "none")
        body = "\n".join(" & ".join(_tex(c) for c in row) + r" \\" for row in rows)
        parts.append("\\begin{table}[t]\n\\centering\\small\n"
                     f"\\begin{{tabular}}{{ll{'c' * (len(header) - 3)}p{{5cm}}}}\n\\toprule\n"
                     + " & ".join(_tex(h) for h in header) + " \\\\\n\\midrule\n" + body
                     + f"\n\\bottomrule\n\\end{{tabular}}\n\\caption{{{_tex(title(clip))}}}\n"
                     "\\end{table}")
    return "\n\n".join(parts) + "\n"


def write_tables(df: pd.DataFrame, reports_dir: str | Path,
                 memo: dict | None = None) -> tuple[dict[str, pd.DataFrame], list[Path], dict]:
    """Write table3.md, table3.tex and table3.csv (all clip modes, long format).

    df carries harness.report.ran.with_ran's columns (render adds them); memo: the last
    report's rows (table3's memo), so that only the rows whose cells changed are aggregated again.

    Returns:
        (clip mode -> table, paths written, the memo of this report's rows).
    """
    out = Path(reports_dir)
    rows, keys = Memo(last=memo or {}), pd.Series(row_keys(df), index=df.index, dtype="uint64")
    tables = {clip: table3(df, clip, rows, keys) for clip in clip_modes(df)}
    long = pd.concat(tables.values(), ignore_index=True)
    return tables, [atomic_write(out / "table3.md", to_markdown(tables, footnotes(df))),
                    atomic_write(out / "table3.tex", to_latex(tables)),
                    atomic_write(out / "table3.csv", long.to_csv(index=False))], rows.now
