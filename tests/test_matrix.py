"""matrix.yml schema, expansion, ids, selection and feasibility (no training: fast)."""
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cells import CellConfigError, cell_hash, expand
from harness.exitcodes import ExitCode
from harness.executors.base import Capabilities
from harness.executors.local import LocalExecutor
from harness.feasibility import why_not_runnable
from harness.host import Gpu, Host
from harness.lock import LockedError, ResultsLock
from harness.matrix import MatrixError, load_study
from harness.runner import RunConfig, select_cells
from harness.workflow import execute

ROOT = Path(__file__).resolve().parents[1]

CPU = """\
axes:
  stack:
    - name: cpu
      image: local
      torch: "2.13.0"
  clip: [none, norm]
  seed: [0, 1]
  preset: [tiny]
"""


def write(tmp_path, text, name="m.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text):
    with pytest.raises(MatrixError) as e:
        load_study(write(tmp_path, text))
    return str(e.value)


# --- schema errors: one line, file:line, key, what is allowed ------------------------------

def test_unknown_stack_key_names_line_key_and_allowed(tmp_path):
    msg = error_of(tmp_path, CPU.replace('      torch: "2.13.0"', '      torch: "2.13.0"\n      executr: local'))
    assert msg == ("%s:6: axes.stack[0].executr: unknown key; allowed: name, image, dockerfile, cuda, "
                   "torch, gpu_capabilities, nmr, executor, overrides" % (tmp_path / "m.yml"))


def test_bad_axis_value_lists_allowed_values(tmp_path):
    msg = error_of(tmp_path, CPU.replace("clip: [none, norm]", "clip: [none, nrom]"))
    assert msg.splitlines() == ["%s:6: axes.clip[1]: 'nrom' is not allowed; allowed: 'none', 'norm' or 'value'"
                                % (tmp_path / "m.yml")]


def test_unknown_executor_lists_the_registered_ones(tmp_path):
    msg = error_of(tmp_path, CPU.replace('      torch: "2.13.0"', '      torch: "2.13.0"\n      executor: dryrun'))
    assert msg == ("%s:6: axes.stack[0].executor: 'dryrun' is not allowed; allowed: 'docker', 'local' or 'ray'"
                   % (tmp_path / "m.yml"))


def test_missing_required_key(tmp_path):
    msg = error_of(tmp_path, CPU.replace('      torch: "2.13.0"\n', ""))
    assert msg.endswith(":3: axes.stack[0].torch: required key is missing")


def test_unknown_trainer_key_in_overrides_and_config(tmp_path):
    text = CPU.replace('      torch: "2.13.0"', '      torch: "2.13.0"\n      overrides: {lrr: 1}') + "config:\n  bogus: 2\n"
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0].startswith("%s:11: config.bogus: unknown trainer key; allowed: " % (tmp_path / "m.yml"))
    assert lines[1].startswith("%s:6: axes.stack[0].overrides.lrr: unknown trainer key" % (tmp_path / "m.yml"))


def test_rule_naming_unknown_stack(tmp_path):
    msg = error_of(tmp_path, CPU + "exclude:\n  - {stack: gpu9}\n")
    assert msg == "%s:10: exclude[0].stack: 'gpu9' is not a stack of this study; allowed: cpu" % (tmp_path / "m.yml")


def test_yaml_syntax_error_has_line(tmp_path):
    msg = error_of(tmp_path, CPU + "exclude: [\n")
    assert msg.startswith("%s:" % (tmp_path / "m.yml")) and "invalid YAML" in msg and "\n" not in msg


def test_trainer_rejected_value_points_at_override_line(tmp_path):
    study = load_study(write(tmp_path, CPU.replace('      torch: "2.13.0"',
                                                   '      torch: "2.13.0"\n      overrides: {lr: -1.0}')))
    with pytest.raises(CellConfigError, match=r"m.yml:6: stack cpu: lr: must be > 0"):
        expand(study)


def test_cli_reports_config_error_without_traceback(tmp_path):
    path = write(tmp_path, CPU.replace("seed: [0, 1]", "seed: [-1]"))
    res = CliRunner().invoke(__import__("harness.cli", fromlist=["main"]).main, ["run", "--matrix", str(path)])
    assert res.exit_code == ExitCode.CONFIG_ERROR
    assert "Traceback" not in res.output


# --- expansion ------------------------------------------------------------------------------

def test_full_study_has_64_cells_with_per_stack_presets():
    cells = expand(load_study(ROOT / "matrix.yml"))
    # 6 stacks x 2 impls x 2 clips x 3 seeds, less author seeds 1 and 2 on both CPU stacks
    assert len(cells) == 64 and len({c.cell_id for c in cells}) == 64
    presets = {(c.axis["stack"], c.config["preset"]) for c in cells}
    assert presets == {("cpu", "cpu-small"), ("cpu-torch1.8", "cpu-small"), ("cuda9.2", "paper"),
                       ("cuda10.0", "paper"), ("cuda11.3", "paper"), ("cuda10.2", "paper")}
    assert cells[0].name == "cpu/ours/clip=none/seed=0"
    author_cpu = [c for c in cells if c.axis["stack"] == "cpu" and c.axis["impl"] == "author"]
    assert [c.axis["seed"] for c in author_cpu] == [0, 0]
    assert {c.config["num_epochs"] for c in author_cpu} == {1}


def test_exclude_then_include(tmp_path):
    text = CPU + "exclude:\n  - {clip: norm, seed: 1}\ninclude:\n  - {clip: value, seed: [7]}\n"
    names = [c.name for c in expand(load_study(write(tmp_path, text)))]
    assert names == ["cpu/ours/clip=none/seed=0", "cpu/ours/clip=none/seed=1", "cpu/ours/clip=norm/seed=0",
                     "cpu/ours/clip=value/seed=7"]


def test_stack_override_beats_axis_and_duplicates_collapse(tmp_path):
    text = CPU.replace("preset: [tiny]", "preset: [tiny, paper]").replace(
        '      torch: "2.13.0"', '      torch: "2.13.0"\n      overrides: {preset: cpu-small}')
    cells = expand(load_study(write(tmp_path, text)))
    assert len(cells) == 4 and {c.config["preset"] for c in cells} == {"cpu-small"}


def test_golden_cell_id():
    # pins the hash recipe (canonical JSON + schema version) on a literal config, so adding a
    # trainer default in model/config.py does not break it; that does change real ids, on purpose
    from harness.matrix import Stack
    stack = Stack(name="cpu", image="local", torch="2.13.0")
    axes = {"stack": "cpu", "impl": "ours", "clip": "none", "clip_threshold": 5.0, "seed": 0,
            "dataset": "builtin", "preset": "tiny"}
    config = {"preset": "tiny", "clip": "none", "clip_threshold": 5.0, "seed": 0, "lr": 0.0005, "threads": 2}
    assert cell_hash(axes, config, stack) == GOLDEN


GOLDEN = "c1ab200eec43"


def test_cell_id_is_hash_of_axes_config_and_stack(tmp_path):
    cell = expand(load_study(write(tmp_path, CPU)))[0]
    assert cell.name == "cpu/ours/clip=none/seed=0"
    assert cell.cell_id == cell_hash(cell.axis, cell.config, cell.stack) and len(cell.cell_id) == 12


def test_id_ignores_threads_executor_and_data_location(tmp_path):
    a = expand(load_study(write(tmp_path, CPU)))[0]
    moved = CPU.replace('      torch: "2.13.0"', '      torch: "2.13.0"\n      executor: docker')
    b = expand(load_study(write(tmp_path, moved, "n.yml")))[0]
    assert a.cell_id == b.cell_id
    assert cell_hash(a.axis, dict(a.config, threads=7), a.stack) == a.cell_id
    assert cell_hash(a.axis, dict(a.config, data_dir="/x/synface"), a.stack) == \
        cell_hash(a.axis, dict(a.config, data_dir="/y/z/synface"), a.stack)


def test_changing_one_axis_value_changes_only_those_ids(tmp_path):
    before = {c.name: c.cell_id for c in expand(load_study(write(tmp_path, CPU)))}
    after = {c.name: c.cell_id for c in expand(load_study(write(tmp_path, CPU.replace("seed: [0, 1]", "seed: [0, 2]"), "n.yml")))}
    assert {n: i for n, i in after.items() if n in before} == {n: before[n] for n in after if n in before}
    assert set(after.values()) - set(before.values()) == {after["cpu/ours/clip=none/seed=2"],
                                                          after["cpu/ours/clip=norm/seed=2"]}


# --- selection ------------------------------------------------------------------------------

def test_select_only_and_cell_prefix(tmp_path):
    cells = expand(load_study(write(tmp_path, CPU)))
    got = select_cells(cells, config=RunConfig(only=("clip=norm", "seed=0", "seed=1")))
    assert [c.name for c in got] == ["cpu/ours/clip=norm/seed=0", "cpu/ours/clip=norm/seed=1"]
    assert select_cells(cells, config=RunConfig(cells=(cells[2].cell_id[:6],))) == [cells[2]]


def test_select_by_a_factor_axis_swept_or_not(tmp_path):
    study = ROOT / "matrices" / "causes-cpu.yml"
    cells = expand(load_study(study))
    tf32 = select_cells(cells, config=RunConfig(only=("tf32=true",)))
    assert len(tf32) == 5 and all(c.config["tf32"] is True for c in tf32)
    # matrix.yml does not sweep tf32: its cells are selected by their config's value
    plain = expand(load_study(ROOT / "matrix.yml"))
    assert len(select_cells(plain, config=RunConfig(only=("tf32=stack",)))) == len(plain)


@pytest.mark.parametrize("cfg", [RunConfig(only=("colour=red",)), RunConfig(only=("clip=none", "seed=9")),
                                 RunConfig(cells=("zzzz",))])
def test_selection_errors_exit_3(tmp_path, cfg, caplog):
    cells = expand(load_study(write(tmp_path, CPU)))
    assert select_cells(cells, config=cfg) == ExitCode.SELECTION_ERROR
    assert len(caplog.records) == 1


# --- feasibility ------------------------------------------------------------------------------

def _gpu_cell():
    return [c for c in expand(load_study(ROOT / "matrix.yml")) if c.axis["stack"] == "cuda9.2"][0]


class _Docker(LocalExecutor):
    name = "fake-docker"
    capabilities = Capabilities(gpu=True, needs_image=True, isolated_fs=True)


@pytest.mark.parametrize("host, expect", [
    (Host("h", 2), "needs a CUDA 9.2 GPU and none is visible"),
    (Host("h", 2, (Gpu("H100", "9.0"),), docker=True), "GPU H100 (sm 9.0) is not supported by CUDA 9.2"),
    (Host("h", 2, (Gpu("T4", "7.5"),), docker=False, docker_why="no Docker daemon answers"),
     "runs in docker and no Docker daemon answers"),
    (Host("h", 2, (Gpu("T4", "7.5"),), docker=True), None),
])
def test_feasibility_reasons(host, expect):
    why = why_not_runnable(_gpu_cell(), _Docker, host, "docker")
    assert why == expect if expect is None else expect in why


def test_cpu_cell_runs_locally_without_gpu():
    cpu = expand(load_study(ROOT / "matrix.yml"))[0]
    assert why_not_runnable(cpu, LocalExecutor, Host("h", 2), "local") is None


@pytest.mark.parametrize("host, counts", [
    (Host("h", 2), "8 run, 56 skip"),
    # the 8 cpu-torch1.8 cells run only where Docker answers and their image is built
    (Host("h", 2, docker=True, images=frozenset({"cpu", "cpu-torch1.8"})), "16 run, 48 skip"),
])
@pytest.mark.usefixtures("author_checkout_here")
def test_dry_run_lists_the_cpu_cells_runnable_and_the_gpu_cells_skipped(tmp_path, monkeypatch, host, counts):
    from harness.cli import main
    monkeypatch.setattr("harness.runner.probe", lambda: host)  # the verdicts, not this machine's GPUs
    res = CliRunner().invoke(main, ["run", "--matrix", str(ROOT / "matrix.yml"), "--results", str(tmp_path),
                                    "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "64 cells: %s" % counts in res.output
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


@pytest.mark.usefixtures("no_author_checkout")
def test_without_the_authors_code_their_cells_are_skipped_with_the_reason_never_failed(tmp_path, monkeypatch):
    from harness.cli import main
    monkeypatch.setattr("harness.runner.probe", lambda: Host("h", 2))
    args = ["run", "--matrix", str(ROOT / "matrix.yml"), "--results", str(tmp_path / "results")]
    dry = CliRunner().invoke(main, args + ["--dry-run"])
    assert dry.exit_code == 0 and "64 cells: 6 run, 58 skip" in dry.output
    author = [line for line in dry.output.splitlines() if "cpu/author/" in line]
    assert len(author) == 2 and all(" skip " in line and "the authors' code is not here" in line for line in author)
    ran = CliRunner().invoke(main, args + ["--only", "stack=cpu", "--only", "impl=author"])
    assert ran.exit_code == 0, ran.output
    states = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/status.json")]
    assert len(states) == 2 and all(s["state"] == "skipped" and "scripts/setup.sh" in s["reason"] for s in states)


# --- pipeline and lock ---------------------------------------------------------------------------

def test_workflow_stops_at_first_int_and_maps_ctrl_c():
    calls = []

    def step(prev, *, config):
        calls.append(prev)
        return ["value"] if len(calls) < 2 else ExitCode.SELECTION_ERROR

    def never(prev, *, config):
        raise AssertionError("ran after an exit code")

    def interrupt(prev, *, config):
        raise KeyboardInterrupt

    assert execute([step, step, never], config=None) == 3 and calls == [None, ["value"]]
    assert execute([interrupt], config=None) == 130


def test_second_lock_refuses_naming_holder(tmp_path):
    with ResultsLock(tmp_path):
        with pytest.raises(LockedError, match=r"in use by another `repro run` \(pid \d+ on "):
            ResultsLock(tmp_path).__enter__()
    with ResultsLock(tmp_path):  # released: free again
        pass


# --- cross-axis overrides -----------------------------------------------------------------

OVERRIDDEN = CPU.replace("  preset: [tiny]\n", "  preset: [tiny]\n  impl: [ours, author]\n") + """\
overrides:
  - when: {impl: author, clip: norm}
    config: {num_epochs: 2}
"""


def test_override_applies_only_to_matching_cells(tmp_path):
    cells = expand(load_study(write(tmp_path, OVERRIDDEN)))
    epochs = {(c.axis["impl"], c.axis["clip"]): c.config["num_epochs"] for c in cells}
    assert epochs == {("ours", "none"): 1, ("ours", "norm"): 1, ("author", "none"): 1, ("author", "norm"): 2}


def test_override_with_an_unknown_trainer_key_names_its_line(tmp_path):
    msg = error_of(tmp_path, OVERRIDDEN.replace("num_epochs: 2", "num_epoch: 2"))
    assert msg.startswith("%s:12: overrides[0].config.num_epoch: unknown trainer key" % (tmp_path / "m.yml"))


def test_override_with_a_bad_value_names_its_line(tmp_path):
    with pytest.raises(CellConfigError) as e:
        expand(load_study(write(tmp_path, OVERRIDDEN.replace("num_epochs: 2", "clip_threshold: -1"))))
    assert "%s:12" % (tmp_path / "m.yml") in str(e.value) and "clip_threshold" in str(e.value)


@pytest.mark.parametrize("key, earlier, later", [("builtin_version", 4, 5), ("cudnn_benchmark", None, True),
                                                 ("cpu_isa", "native", "avx2")])
def test_a_key_added_later_keeps_the_ids_of_cells_from_before_it(key, earlier, later):
    """A cell written before `key` existed computed what `earlier` means: same id; `later` is new work."""
    cell = expand(load_study(ROOT / "matrix.yml"))[0]
    before = {k: v for k, v in cell.config.items() if k != key}
    assert cell_hash(cell.axis, dict(before, **{key: earlier}), cell.stack) == cell_hash(cell.axis, before, cell.stack)
    assert cell_hash(cell.axis, dict(before, **{key: later}), cell.stack) != cell_hash(cell.axis, before, cell.stack)


def test_cudnn_benchmark_is_a_factor_axis(tmp_path):
    study = CPU.replace("  clip: [none, norm]\n", "  clip: [none, norm]\n  cudnn_benchmark: [true, false]\n")
    cells = expand(load_study(write(tmp_path, study)))
    assert sorted(c.config["cudnn_benchmark"] for c in cells if c.axis["clip"] == "none") == [False, False, True, True]


def test_numbers_as_people_write_them_are_numbers_in_cell_and_study_files(tmp_path):
    """PyYAML (YAML 1.1) reads `1e-3` as a string; both readers take it as the number 0.001."""
    from model.config import load_config
    cell_file = write(tmp_path, "preset: tiny\nlr: 1e-3\nweight_decay: 5E-4\nclip_threshold: 1.5e+1\nseed: 7\n",
                      name="cell.yaml")
    cfg = load_config(str(cell_file))
    assert (cfg["lr"], cfg["weight_decay"], cfg["clip_threshold"], cfg["seed"]) == (1e-3, 5e-4, 15.0, 7)
    study = CPU + "  lr: [1e-3, 5e-4]\nconfig: {weight_decay: 2e-4, num_epochs: 1}\n"
    cells = expand(load_study(write(tmp_path, study)))
    assert sorted({c.config["lr"] for c in cells}) == [5e-4, 1e-3]
    assert {c.config["weight_decay"] for c in cells} == {2e-4} and {c.config["num_epochs"] for c in cells} == {1}
    assert all(isinstance(c.config["lr"], float) for c in cells)
