"""CIFAR-N's human labels (Wei et al., ICLR 2022) as their authors publish them: torch.save of a dict of
numpy arrays, read without running anything in it, checked against the CIFAR data before use, and
trained on, listed, reported, swept and packed like any noise (act/datasets/human.py)."""
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from act.commands.cli import main
from act.config import load_config
from act.datasets import read_data, read_source
from act.errors import ActError
from act.pack.compat import pack_key
from act.run.titles import noise_tag, setting_label, setting_of
from act.sweep.spec import read_sweep
from tests.support.datafactory import CIFAR, write_cifar, write_pickle

ROOT = Path(__file__).resolve().parent.parent
CIFAR10N_SETS = ("clean_label", "aggre_label", "worse_label", "random_label1", "random_label2", "random_label3")


def flipped(labels: np.ndarray, every: int, classes: int) -> np.ndarray:
    """`labels` with every `every`-th label moved to the next class, as a human might mislabel it."""
    out = labels.copy()
    out[::every] = (out[::every] + 1) % classes
    return out


def cifar10n(tmp_path, n_train=40, n_test=10) -> tuple[str, np.ndarray]:
    root = write_cifar(str(tmp_path / "cifar"), "cifar10n", n_train=n_train, n_test=n_test)
    return root, read_source("cifar10n", root).train.labels


def label_table(true: np.ndarray) -> dict:
    """CIFAR-10_human.pt's dict for training labels `true`: each set a distinct, known flip of them."""
    return {key: flipped(true, every, 10) if every else true.copy()
            for key, every in zip(CIFAR10N_SETS, (0, 11, 2, 5, 6, 7))}


def save_labels(path, table: dict) -> str:
    torch.save(table, path)  # as the authors wrote theirs: a dict of numpy arrays
    return str(path)


def human_config(root: str, file: str, labels: str, *more: str, name: str = "cifar10n"):
    return load_config(None, [f"data.name={name}", f"data.root={root}", "data.noise.type=human",
                              "data.noise.closeset_ratio=0", f"data.noise.file={file}", f"data.noise.labels={labels}",
                              *more])


@pytest.mark.parametrize("key", CIFAR10N_SETS)
def test_each_cifar10n_label_set_becomes_the_training_label(tmp_path, key):
    root, true = cifar10n(tmp_path)
    table = label_table(true)
    source = read_data(human_config(root, save_labels(tmp_path / "CIFAR-10_human.pt", table), key))
    assert np.array_equal(source.train.noisy, table[key]) and np.array_equal(source.train.labels, true)


@pytest.mark.parametrize("short,key", [("aggre", "aggre_label"), ("worst", "worse_label"), ("rand1", "random_label1"),
                                       ("rand3", "random_label3")])
def test_the_authors_short_names_name_the_label_sets(tmp_path, short, key):
    root, true = cifar10n(tmp_path)
    cfg = human_config(root, save_labels(tmp_path / "labels.pt", label_table(true)), short)
    assert cfg.data.noise.labels == key


def test_the_test_set_stays_clean(tmp_path):
    root, true = cifar10n(tmp_path)
    cfg = human_config(root, save_labels(tmp_path / "labels.pt", label_table(true)), "worse_label")
    assert np.array_equal(read_data(cfg).test.labels, read_source("cifar10n", root).test.labels)


def test_train_limit_keeps_the_file_labels_of_the_samples_it_keeps(tmp_path):
    root, true = cifar10n(tmp_path)
    table = label_table(true)
    source = read_data(human_config(root, save_labels(tmp_path / "l.pt", table), "worse_label", "data.train_limit=9"))
    assert np.array_equal(source.train.noisy, table["worse_label"][:9]) and len(source.train.labels) == 9


def test_a_folder_holding_the_file_under_its_published_name_is_read(tmp_path):
    root, true = cifar10n(tmp_path)
    table = label_table(true)
    save_labels(tmp_path / "CIFAR-10_human.pt", table)
    source = read_data(human_config(root, str(tmp_path), "aggre"))
    assert np.array_equal(source.train.noisy, table["aggre_label"])


def cifar100n(tmp_path, n_train=60, n_test=12) -> tuple[str, np.ndarray]:
    """CIFAR-100 whose test images are of classes some training image has (each fine class in a superclass)."""
    root = write_cifar(str(tmp_path / "cifar"), "cifar100n", n_train=n_train, n_test=n_test)
    true = read_source("cifar100n", root).train.labels
    folder = Path(root) / CIFAR["cifar100"][0]
    write_pickle(str(folder / "test"), {"data": np.zeros((n_test, 3072), np.uint8), "fine_labels": true[:n_test].tolist()})
    return root, true


def test_cifar100n_coarse_labels_train_the_20_superclasses(tmp_path):
    root, true = cifar100n(tmp_path)
    coarse = true // 5
    table = {"clean_label": true, "noisy_label": flipped(true, 3, 100),
             "clean_coarse_label": coarse.tolist(), "noisy_coarse_label": flipped(coarse, 4, 20).tolist()}
    source = read_data(human_config(root, save_labels(tmp_path / "c.pt", table), "noisy_coarse_label", name="cifar100n"))
    assert source.num_classes == 20 and np.array_equal(source.train.labels, coarse)
    assert np.array_equal(source.train.noisy, flipped(coarse, 4, 20)) and np.array_equal(source.test.labels, coarse[:12])


# ---- refusals: one line, nothing created ----

def refused(tmp_path, capsys, root, file, labels="worse_label") -> str:
    out = tmp_path / "runs"
    code = main(["train", f"data.name=cifar10n", f"data.root={root}", "data.noise.type=human",
                 "data.noise.closeset_ratio=0", f"data.noise.file={file}", f"data.noise.labels={labels}",
                 f"run.out_dir={out}", "model.name=tinycnn"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("act: error: ") and err.count("\n") == 1, err
    assert not out.exists() or not any(out.iterdir())
    return err


def test_a_file_of_another_image_order_is_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    table = {key: np.roll(labels, 1) for key, labels in label_table(true).items()}
    err = refused(tmp_path, capsys, root, save_labels(tmp_path / "l.pt", table))
    assert "clean_label differs from the CIFAR-10N training labels" in err and "another ordering" in err


def test_a_file_of_another_length_is_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    table = {key: labels[:-1] for key, labels in label_table(true).items()}
    err = refused(tmp_path, capsys, root, save_labels(tmp_path / "l.pt", table))
    assert "holds 39 labels but the training set has 40 images" in err


def test_labels_out_of_range_are_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    table = label_table(true)
    table["worse_label"][3] = 10
    err = refused(tmp_path, capsys, root, save_labels(tmp_path / "l.pt", table))
    assert "worse_label: 1 labels are outside [0, 10)" in err


class RunsACommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_label_file_that_would_run_code_is_refused_unexecuted(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    marker = tmp_path / "ran"
    table = {**label_table(true), "worse_label": RunsACommand(marker)}
    err = refused(tmp_path, capsys, root, save_labels(tmp_path / "l.pt", table))
    assert "refused: the pickle calls posix.system" in err and "nothing in it was run" in err
    assert not marker.exists()


def test_a_file_of_torch_tensors_is_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    table = {key: torch.as_tensor(labels) for key, labels in label_table(true).items()}
    assert "builds torch objects (torch._utils._rebuild_tensor_v2)" in refused(tmp_path, capsys, root, save_labels(tmp_path / "l.pt", table))


def test_a_file_that_is_not_a_torch_save_zip_is_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    npy = tmp_path / "CIFAR-10_human.npy"
    np.save(npy, label_table(true), allow_pickle=True)
    assert "not a torch.save file" in refused(tmp_path, capsys, root, npy)


def test_a_cifar100n_file_given_for_cifar10n_is_one_line(tmp_path, capsys):
    root, true = cifar10n(tmp_path)
    file = save_labels(tmp_path / "l.pt", {"clean_label": true, "noisy_label": true})
    assert "has no 'worse_label' labels (it holds clean_label, noisy_label)" in refused(tmp_path, capsys, root, file)


def test_human_noise_without_a_label_file_is_one_line_and_creates_nothing(tmp_path, capsys):
    root, _ = cifar10n(tmp_path)
    assert "data.noise.type=human needs data.noise.file: Wei et al.'s CIFAR-10_human.pt" in \
        refused(tmp_path, capsys, root, "null")


@pytest.mark.parametrize("overrides,why", [
    (["data.noise.file=/x/CIFAR-10_human.pt"], "data.noise.file is read only with data.noise.type=human"),
    (["data.noise.type=human", "data.noise.file=/x", "data.noise.labels=noisy_label"],
     "data.noise.labels='noisy_label' is not a label set of CIFAR-10N's CIFAR-10_human.pt"),
    (["data.noise.type=human", "data.noise.closeset_ratio=0.4", "data.noise.file=/x", "data.noise.labels=worst"],
     "data.noise.closeset_ratio=0.4 is read only with synthetic noise; with data.noise.type=human the label file "
     "is the noise: set data.noise.closeset_ratio=0"),
    (["data.noise.type=human", "data.noise.closeset_ratio=0", "data.noise.seed=3", "data.noise.file=/x",
      "data.noise.labels=worst"], "data.noise.seed=3 is read only with synthetic noise"),
    (["data.name=cifar80n", "data.noise.openset_ratio=0.2", "data.noise.type=human", "data.noise.file=/x",
      "data.noise.labels=worst"], "exist for cifar10n and cifar100n only"),
])
def test_human_noise_settings_that_do_not_fit_are_one_line(overrides, why):
    with pytest.raises(ActError, match=why.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, ["data.name=cifar10n", "data.root=/data", *overrides])


# ---- names ----

def test_titles_tell_human_from_synthetic_cifar_n():
    human = setting_of({"data.name": "cifar10n", "data.noise.type": "human", "data.noise.labels": "worse_label",
                        "data.noise.closeset_ratio": 0.2, "data.noise.openset_ratio": 0.0})
    assert setting_label(human) == "CIFAR-10N (human, worse_label)"
    assert setting_label(("cifar100n", "symmetric", 0.2, 0.0)) == "CIFAR100N (synthetic) sym20"
    assert noise_tag({"type": "human", "labels": "worse_label", "closeset_ratio": 0.2}) == "human-worst"


def test_runs_differing_only_in_the_human_label_set_share_a_pack_but_not_with_superclasses():
    def cfg(labels, name="cifar10n"):
        return load_config(ROOT / "configs" / "cifar-n-human" / "cifar10n-aggre.yaml",
                           [f"data.name={name}", "data.root=/d", "data.noise.file=/f", f"data.noise.labels={labels}"])

    assert pack_key(cfg("worst")) == pack_key(cfg("rand1"))
    assert pack_key(cfg("noisy_label", "cifar100n")) != pack_key(cfg("noisy_coarse_label", "cifar100n"))


def test_the_cifar_n_sweep_is_every_label_set_times_five_seeds():
    sweep = read_sweep(ROOT / "configs" / "sweeps" / "cifar-n.yaml", ["data.root=/data", "data.noise.file=/labels"])
    names = [cell.name for cell in sweep.cells]
    assert len(names) == 30 and "cifar10n-worst-seed4" in names and "cifar100n-noisy-seed0" in names


# ---- a demo-sized run through act train, act issues and act report ----

@pytest.fixture(scope="module")
def human_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("human")
    root, true = cifar10n(tmp, n_train=48, n_test=16)
    table = label_table(true)
    file = save_labels(tmp / "CIFAR-10_human.pt", table)
    code = main(["train", "--config", str(ROOT / "configs" / "cifar-n-human" / "cifar10n-worst.yaml"),
                 f"data.root={root}", f"data.noise.file={file}", f"run.out_dir={tmp / 'runs'}", "model.name=tinycnn",
                 "optim.epochs=2", "optim.warmup_epochs=1", "optim.batch_size=16", "run.device=cpu",
                 "pipeline.name=reference", "pipeline.workers=0", "run.plots=false", "run.progress=false"])
    assert code == 0
    (run,) = (tmp / "runs").iterdir()
    return run, table


def test_the_run_trains_on_the_file_labels_and_is_named_for_them(human_run):
    run, table = human_run
    labels = np.load(run / "labels.npz")
    assert run.name.startswith("cifar10n-human-worst-act-")
    assert np.array_equal(labels["noisy"], table["worse_label"]) and np.array_equal(labels["true"], table["clean_label"])
    noise = json.loads((run / "summary.json").read_text())["noise"]
    assert noise["labels"] == "worse_label" and noise["actual_noise_rate"] == pytest.approx(0.5)


def test_act_issues_scores_the_list_against_the_human_flips(human_run, capsys):
    run, _ = human_run
    assert main(["issues", str(run)]) == 0
    assert "precision" in capsys.readouterr().out


def test_act_report_names_the_human_set_and_sets_wei_et_al_beside_it(human_run, capsys):
    run, _ = human_run
    assert main(["report", str(run.parent)]) == 0
    out = capsys.readouterr().out
    assert "CIFAR-10N (human, worse_label)" in out and "CIFAR-N human labels beside Wei et al." in out
    row = next(line for line in out.splitlines() if line.startswith("| CIFAR-10N (human, worse_label) | ACT | 1 | 50.00"))
    assert "77.69 ± 1.55" in row and "92.68 ± 0.22 (PES (Semi))" in row


def test_a_zip_member_layout_other_than_torch_save_is_one_line(tmp_path):
    bad = tmp_path / "l.pt"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("labels.txt", "0 1 2")
    from act.datasets.human import read_label_file

    with pytest.raises(ActError, match="holds 0 data.pkl records"):
        read_label_file(str(bad))
