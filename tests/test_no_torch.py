"""Quick answers on a login node (issue 28, item 9): `act --help`, `act <command> --help`,
`act train --print-config`, `act sweep --status` and `act report` answer without importing torch
(seconds on a cluster's shared file system), from the registries' names and the run folders' files.
Each runs in a process where importing torch fails."""
import json
import subprocess
import sys
from pathlib import Path

from act.config import dump_yaml, load_config

ROOT = Path(__file__).resolve().parent.parent
# torch (and torchvision, which imports it) made unimportable, then the command.
WITHOUT_TORCH = ("import sys; sys.modules['torch'] = sys.modules['torchvision'] = None; "
                 "from act.commands.cli import main; sys.exit(main(sys.argv[1:]))")


def act_without_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def fake_run(folder: Path, rtm: float) -> None:
    """A finished run folder as `act report` reads it: its config and summary."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_yaml(load_config(None, [f"run.name={folder.name}"])))
    stats = {"last10_mean": rtm, "last10_std": 0.5, "best": rtm + 1, "final": rtm}
    (folder / "summary.json").write_text(json.dumps({
        "rtm": stats, "ntm": stats, "selection": {"precision": 90.0, "recall": 80.0, "f1": 85.0},
        "epochs": 40, "epoch_seconds_median": 0.3}))


def test_act_help_answers_without_torch():
    done = act_without_torch("--help")
    assert done.returncode == 0, done.stderr
    assert "sweep" in done.stdout


def test_train_help_lists_the_registries_names_without_torch():
    done = act_without_torch("train", "--help")
    assert done.returncode == 0, done.stderr
    assert "(resnet32 | sevencnn | tinycnn | timm:<name>)" in done.stdout
    assert "(auto | tensor | reference | dali | ffcv)" in done.stdout and "(act | standard)" in done.stdout


def test_print_config_validates_and_answers_without_torch():
    done = act_without_torch("train", "--print-config", "model.name=resnet32", "pipeline.name=tensor")
    assert done.returncode == 0, done.stderr
    assert "  name: resnet32" in done.stdout


def test_report_answers_without_torch(tmp_path):
    fake_run(tmp_path / "runs" / "a", 90.0)
    done = act_without_torch("report", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    assert "90.00" in done.stdout


def test_sweep_status_answers_without_torch(tmp_path):
    from act.sweep.spec import RUNS, check_cells, open_folder, read_sweep

    out = tmp_path / "sweep"
    sweep = read_sweep(ROOT / "configs" / "sweeps" / "demo.yaml", [])
    open_folder(out, sweep, check_cells(sweep, out / RUNS, machine=False)).release()
    fake_run(out / RUNS / sweep.cells[0].name, 91.0)
    done = act_without_torch("sweep", "--status", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{sweep.cells[0].name}  " in done.stdout and "91.00" in done.stdout


# In a process of its own: this one's registries may also hold what other tests registered.
SHIPPED = """import json, pipelines
from act.config import BUILT_IN
from act.models import MODELS
print(json.dumps([sorted(BUILT_IN["model.name"]), sorted(MODELS), list(BUILT_IN["pipeline.name"]),
                  list(pipelines.pipeline_names()), list(BUILT_IN["pipeline.views"]), list(pipelines.view_names())]))"""


def test_the_built_in_names_are_the_registries_own():
    done = subprocess.run([sys.executable, "-c", SHIPPED], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    built_in_models, models, built_in_pipelines, pipeline_names, built_in_views, view_names = json.loads(done.stdout)
    assert built_in_models == models and built_in_pipelines == pipeline_names and built_in_views == view_names
