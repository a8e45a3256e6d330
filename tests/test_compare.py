"""repro compare and causes.md: a planted effect is found, seed noise is not called an effect."""
import numpy as np
import pandas as pd
import pytest

from harness import compare as cmp
from harness.report import causes


def _cells(factor_values, seeds, side_offset=None, noise=0.01, rng_seed=0, **fixed):
    """Rows shaped like collect's table: one per (factor value, seed), SIDE/MAD with seed noise."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for value in factor_values:
        for seed in seeds:
            base = 0.012 + 0.002 * np.sin(seed)          # each seed has its own level: pairing removes it
            shift = (side_offset or {}).get(value, 0.0)
            row = dict(cell_id="%s-%d" % (value, seed), name="tf32=%s/seed=%d" % (value, seed),
                       state="done", seed=seed, stack="cpu", impl="ours", clip="none",
                       clip_threshold=5.0, tf32=value, side_mean=base + shift + rng.normal(0, noise * 0.01),
                       mad_mean=30 + 100 * shift + rng.normal(0, noise * 10), n_spikes=int(seed % 2))
            rows.append(dict(row, **fixed))
    return pd.DataFrame(rows)


def test_planted_offset_is_found_with_the_right_sign_and_interval():
    df = _cells([False, True], range(5), side_offset={True: 0.002})
    result = cmp.compare(df, "tf32=false", "tf32=true")
    side = result.table().loc["SIDE"]
    assert side["paired"] and side["n_a"] == side["n_b"] == 5
    assert side["low"] < 0.2 < side["high"] and side["low"] > 0       # x1e-2 units: 0.002 -> 0.2
    assert "a significant difference at 95%" in result.verdict and "SIDE" in result.verdict


def test_groups_that_differ_only_by_seed_noise_are_not_called_different():
    df = _cells([False, True], range(6), noise=1.0, rng_seed=3)
    result = cmp.compare(df, "tf32=false", "tf32=true")
    assert not any(e.significant for e in result.effects if e.metric in ("SIDE", "MAD")), result.verdict


def test_identical_sides_give_a_zero_point_interval():
    df = _cells([False, True], range(3), noise=0.0)
    df.loc[df.tf32, ["side_mean", "mad_mean"]] = df.loc[~df.tf32, ["side_mean", "mad_mean"]].to_numpy()
    side = cmp.compare(df, "tf32=false", "tf32=true").table().loc["SIDE"]
    assert side["low"] == side["high"] == 0.0 and not side["significant"]


@pytest.mark.parametrize("a, b, fragment", [
    ("tf32=false", "clip=norm", "different factors"),
    ("tf32=false", "tf32=false", "two different values"),
    ("tf32", "tf32=true", "expected KEY=VALUE"),
    ("nosuch=1", "nosuch=2", "no factor 'nosuch'"),
])
def test_bad_selectors_are_refused_in_one_line(a, b, fragment):
    with pytest.raises(cmp.CompareError) as err:
        cmp.compare(_cells([False, True], range(3)), a, b)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_groups_that_differ_in_a_second_factor_are_refused_and_where_fixes_it():
    df = pd.concat([_cells([False], range(3)),
                    _cells([True], range(3)).assign(clip="norm")])
    with pytest.raises(cmp.CompareError, match="differ in more than tf32 .*clip"):
        cmp.compare(df, "tf32=false", "tf32=true")
    both = pd.concat([df, df.assign(clip=np.where(df["clip"] == "none", "norm", "none"))])
    assert cmp.compare(both, "tf32=false", "tf32=true", where=["clip=none"]).effects
    # A has clip none and norm, B only norm: the refusal names the --where that would fix it
    mixed = pd.concat([both[both.tf32 == False], df[df.tf32 == True]])  # noqa: E712
    mixed["cell_id"] = ["c%d" % i for i in range(len(mixed))]
    with pytest.raises(cmp.CompareError, match=r"add --where to fix them, e\.g\. --where clip=norm$"):
        cmp.compare(mixed, "tf32=false", "tf32=true")


def test_too_few_seeds_are_refused():
    with pytest.raises(cmp.CompareError, match="at least 2"):
        cmp.compare(_cells([False, True], [0]), "tf32=false", "tf32=true")


def test_failure_rates_count_cells_with_exact_intervals_and_fisher():
    df = _cells([False, True], range(10)).assign(n_spikes=0)
    df.loc[df.tf32 & (df.seed < 7), "state"] = "diverged"
    result = cmp.compare(df, "tf32=false", "tf32=true")
    rate = result.table().loc["nonfinite"]
    assert rate["mean_a"] == 0.0 and rate["mean_b"] == 0.7 and rate["test"] == "Fisher exact"
    assert rate["p"] == pytest.approx(0.003096, abs=1e-5)             # Fisher's exact test, 0/10 vs 7/10
    assert rate["b_low"] == pytest.approx(0.3475, abs=1e-4)           # Clopper-Pearson of 7/10
    assert result.table().loc["failed", "significant"]
    side = result.table().loc["SIDE"]
    assert side["lost_a"] == 0 and side["lost_b"] == 7                # the diverged cells have no score
    assert "SIDE lost 0 vs 7 cells" in result.verdict


def test_equal_failure_rates_are_no_significant_difference_and_all_pass_is_no_test():
    df = _cells([False, True], range(6))
    df.loc[df.seed < 2, "state"] = "diverged"                          # 2 of 6 on both sides
    table = cmp.compare(df, "tf32=false", "tf32=true").table()
    assert table.loc["nonfinite", "p"] == 1.0 and not table.loc["nonfinite", "significant"]
    assert np.isnan(table.loc["degenerate", "p"]) and table.loc["degenerate", "test"] == "none"


def test_causes_md_corrects_across_hypotheses(tmp_path):
    planted = _cells([False, True], range(5), side_offset={True: 0.002})
    null = _cells([False], range(5), rng_seed=9).assign(tf32=False, align_corners="false")
    df = pd.concat([planted.assign(align_corners="true"), null])
    df.loc[df.index[-1], "state"] = "failed"
    table, untested, not_factors = causes.hypotheses(df)
    assert {"tf32", "align_corners"} == set(table["factor"]) and untested == [] and not_factors == []
    assert table.set_index(["factor", "metric"]).loc[("tf32", "SIDE"), "effect"]
    tested = table["p"].notna()   # rows without spread are no hypothesis: left out of the correction
    assert (table.loc[tested, "p_adjusted"] >= table.loc[tested, "p"] - 1e-12).all()
    assert table.loc[~tested, "p_adjusted"].isna().all() and (~tested).any()
    written = causes.write_causes(df, tmp_path)
    assert any(v.startswith("tf32 false -> true: SIDE") for v in written.verdicts) and written.notes == ()
    text = (tmp_path / "causes.md").read_text()
    assert "tf32 false -> true" in text and "a significant difference at 95%" in text and (tmp_path / "causes.png").stat().st_size > 0
    assert written.files[0].name == "causes.md" and written.plot_key
    # kept as it is while the columns it reads do not change (a longer log), redone when one does
    assert causes.write_causes(df.assign(train_lines=999, problems="torn"), tmp_path, written) is written
    redone = causes.write_causes(df.assign(side_mean=df["side_mean"] * 3), tmp_path, written)
    assert redone.key != written.key and redone.verdicts != written.verdicts


def test_untested_values_are_one_line_and_values_that_move_with_another_key_are_not_factors(tmp_path):
    """GPU stacks skipped here: untested, with why, no cell names; an lr that only changes with the
    stack (its preset) is no factor of the study."""
    cpu = _cells([False], range(3)).assign(stack="cpu", lr=1e-3)
    gpus = [_cells([False], range(3)).assign(stack=s, lr=2e-4, state="skipped") for s in ("cuda10.0", "cuda11.3")]
    table, untested, not_factors = causes.hypotheses(pd.concat([cpu, *gpus], ignore_index=True))
    assert table.empty
    assert untested == [("stack=cuda10.0", "no cell ended (skipped; Table 3 says why)"),
                        ("stack=cuda11.3", "no cell ended (skipped; Table 3 says why)")]
    assert not_factors == ["lr"]
    assert causes.untested_line(untested) == "stack=cuda10.0, stack=cuda11.3: no cell ended (skipped; Table 3 says why)"
    causes.write_causes(pd.concat([cpu, *gpus], ignore_index=True), tmp_path)
    text = (tmp_path / "causes.md").read_text()
    assert "## Not tested" in text and "lr: the same within every stack" in text and "seed=" not in text


def test_a_number_matches_however_it_is_spelt():
    df = _cells([False, True], range(5), side_offset={True: 0.002})
    df = df.assign(clip_threshold=df["tf32"].map({False: 5.0, True: 1.0}), tf32=False)
    assert cmp.compare(df, "clip_threshold=5", "clip_threshold=1").effects[0].significant
    with pytest.raises(cmp.CompareError, match="name two different values"):
        cmp.compare(df, "clip_threshold=5", "clip_threshold=5.0")


def test_groups_by_the_cpu_kernels_env_json_records():
    # the same cells on two machines: cpu_isa native on both, ATen's kernel set differs
    df = _cells([False, True], range(5), side_offset={True: 0.002})
    df = df.assign(**{"env.cpu_capability": df["tf32"].map({False: "AVX2", True: "AVX512"}), "tf32": False})
    result = cmp.compare(df, "cpu_capability=avx2", "cpu_capability=avx512")
    assert result.effects[0].metric == "SIDE" and result.effects[0].significant
    assert "cpu_capability (avx2 -> avx512): a significant difference at 95%" in result.verdict


def test_stale_cells_of_a_group_are_counted_and_said():
    df = _cells([False, True], range(3), stale=False)
    df.loc[df.tf32 & (df.seed < 2), "stale"] = True
    result = cmp.compare(df, "tf32=false", "tf32=true")
    assert (result.stale_a, result.stale_b) == (0, 2)
    assert result.stale_note.startswith("group tf32=true: 2 cells stale")
    assert cmp.compare(df.assign(stale=None), "tf32=false", "tf32=true").stale_note == ""


def test_the_chaos_floor_is_group_as_cells_one_ulp_apart_and_absent_without_them():
    seeds = range(5)
    exact = _cells([False, True], seeds, side_offset={True: 0.002}, perturb_init=False)
    floor_cells = _cells([False], seeds, side_offset={False: 0.0005}, rng_seed=1, perturb_init=True)
    other_lr = _cells([False], seeds, perturb_init=True, lr=0.003)   # another design: not group A's floor
    df = pd.concat([exact.assign(lr=0.002), floor_cells.assign(lr=0.002), other_lr], ignore_index=True)
    df["cell_id"] = ["c%d" % i for i in range(len(df))]
    floor = cmp.chaos_floor(df, "tf32=false", where=["lr=0.002", "perturb_init=false"])
    assert floor.factor == "perturb_init" and floor.seeds_b == tuple(seeds)
    side = floor.table().loc["SIDE"]
    assert side["n_b"] == 5 and side["low"] < 0.05 < side["high"]   # the planted half-ulp-sized shift, x1e-2
    assert cmp.chaos_floor(df, "tf32=true", where=["lr=0.002"]) is None       # no perturbed tf32 cells
    assert cmp.chaos_floor(exact.assign(lr=0.002), "tf32=false") is None
