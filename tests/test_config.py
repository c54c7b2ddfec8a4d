"""Config loading, overrides and the errors a user sees (one line, exit code 2, no traceback)."""
from pathlib import Path

import pytest
import yaml

from act.cli import main
from act.config import Config, all_keys, load_config
from act.errors import ActError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_the_demo_is_digits_with_40_percent_symmetric_noise_on_tinycnn():
    cfg = load_config()
    assert (cfg.data.name, cfg.data.noise.type, cfg.data.noise.closeset_ratio) == ("digits", "symmetric", 0.4)
    assert cfg.model.name == "tinycnn" and cfg.run.device == "cpu"


def test_dotted_overrides_are_typed():
    cfg = load_config(None, ["optim.lr=0.5", "optim.epochs=3", "method.ablation.mining=false", "run.name=x"])
    assert cfg.optim.lr == 0.5 and cfg.optim.epochs == 3 and cfg.method.ablation.mining is False
    assert cfg.run.name == "x"


def test_an_int_is_accepted_for_a_float_key():
    assert load_config(None, ["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path, ["data.root=/somewhere"])
    assert isinstance(cfg, Config)


def test_published_cifar_configs_carry_the_spec_hyperparameters():
    cfg = load_config(CONFIGS / "cifar100n" / "asym40.yaml", ["data.root=/x"])
    assert (cfg.data.noise.type, cfg.data.noise.closeset_ratio) == ("asymmetric", 0.4)
    assert (cfg.optim.lr, cfg.optim.lr1, cfg.optim.warmup_epochs, cfg.optim.epochs) == (0.01, 0.08, 50, 150)
    assert cfg.optim.lr_decay == "cosine:20,5e-4,100" and cfg.model.name == "sevencnn"
    assert load_config(CONFIGS / "cifar80n" / "sym80.yaml", ["data.root=/x"]).data.noise.openset_ratio == 0.2


def test_the_repository_demo_config_is_the_shipped_one():
    assert load_config(CONFIGS / "demo.yaml") == load_config()


@pytest.mark.parametrize("override,message", [
    ("optim.lrr=0.1", "unknown config key 'optim.lrr'; did you mean optim.lr?"),
    ("optim.lr=fast", "optim.lr must be a float"),
    ("optim.epochs=2.5", "optim.epochs must be a int"),
    ("data.noise.closeset_ratio=1.0", "data.noise.closeset_ratio=1.0 is outside [0, 1)"),
    ("data.noise.openset_ratio=0.2", "needs a data set with classes to spare"),
    ("data.name=imagenet", "data.name='imagenet' is not allowed; choose one of"),
    ("method.selection=both", "method.selection='both' is not allowed"),
    ("pipeline.name=fast", "pipeline.name='fast' is not allowed; choose one of: auto, tensor, reference, dali, ffcv"),
    ("optim.batch_size=0", "optim.batch_size=0 must be >= 1"),
    ("optim.lr_decay=cosine:1", "optim.lr_decay"),
    ("model.name=vgg", "model.name='vgg' is not allowed"),
    ("optim", "is not of the form key=value"),
    ("data.noise=3", "data.noise is a section"),
])
def test_bad_values_stop_with_one_clear_line(override, message):
    with pytest.raises(ActError) as info:
        load_config(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_data_set_other_than_digits_needs_a_root():
    with pytest.raises(ActError, match="data.root must name"):
        load_config(None, ["data.name=cifar100n"])


def test_an_unknown_yaml_key_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"optim": {"epochs": 3, "momentom": 0.9}}))
    with pytest.raises(ActError, match="did you mean optim.momentum"):
        load_config(path)


def test_the_cli_prints_one_line_and_exits_2_on_a_config_error(capsys):
    assert main(["train", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("act: error: unknown config key") and "Traceback" not in err
    assert err.count("\n") == 1


def test_the_cli_refuses_a_missing_config_file(capsys, tmp_path):
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_help_lists_every_key(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for key in all_keys():
        assert key in out


def test_the_pipeline_choices_are_the_registered_pipelines():
    from act.config import CHOICES
    from pipelines import PIPELINES

    assert set(CHOICES["pipeline.name"]) == {"auto", *PIPELINES}
