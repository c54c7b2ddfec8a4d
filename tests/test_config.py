"""Config loading, overrides and the errors a user sees (one line, exit code 2, no traceback)."""
import re
from pathlib import Path

import pytest
import yaml

from act.commands.cli import main
from act.config import Config, all_keys, get_key, load_config
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


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "sweeps"),
                         ids=lambda p: p.name)  # sweeps/: tests/test_sweep.py
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
    ("optim.epochs=2.5", "optim.epochs must be an integer"),
    ("data.noise.closeset_ratio=1.0", "data.noise.closeset_ratio=1.0 is outside [0, 1)"),
    ("data.noise.openset_ratio=0.2", "needs a data set with classes to spare"),
    ("data.name=imagenet", "data.name='imagenet' is not allowed; choose one of"),
    ("method.selection=both", "method.selection='both' is not allowed"),
    ("pipeline.name=fast", "pipeline.name='fast' is not allowed; choose one of: auto, tensor, reference, dali, ffcv"),
    ("pipeline.views=fast", "pipeline.views='fast' is not allowed; choose one of: public, dali-randaugment, "
                            "ffcv-resized-crop"),
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


@pytest.mark.parametrize("ratio,message", [
    ("0", "data.noise.openset_ratio must be in (0, 1) for cifar80n"),
    ("0.99", "data.noise.openset_ratio=0.99 leaves 1 of cifar80n's 100 classes closed-set; at least 2 are needed"),
])
def test_an_open_set_ratio_that_leaves_no_closed_set_is_refused_by_the_config(ratio, message):
    with pytest.raises(ActError, match=re.escape(message)):
        load_config(None, ["data.name=cifar80n", "data.root=/x", f"data.noise.openset_ratio={ratio}"])


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
    from act.config import all_choices
    from pipelines import PIPELINES

    assert set(all_choices()["pipeline.name"]) == {"auto", *PIPELINES}
    assert set(all_choices()["pipeline.views"]) == {"public", "dali-randaugment", "ffcv-resized-crop"}


# ---- values are read as written, for the key's declared type (issue 14, items 5, 6, 10) ----

@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("5e-4", 5e-4), (".5", 0.5), ("2", 2.0), ("5.0e-4", 5e-4)])
def test_a_float_key_reads_every_decimal_form_on_the_command_line(text, value):
    assert load_config(None, [f"optim.lr={text}"]).optim.lr == value


def test_a_float_key_reads_exponent_forms_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  name: digits\noptim:\n  lr: 1e-3\n  weight_decay: 5e-4\n  lr1: .5\n")
    cfg = load_config(path)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.lr1) == (1e-3, 5e-4, 0.5)


@pytest.mark.parametrize("text", ["nan", ".nan", "inf", "-.inf", "1e999"])
def test_a_float_key_refuses_non_finite_numbers(text):
    with pytest.raises(ActError, match="optim.lr must be a float"):
        load_config(None, [f"optim.lr={text}"])


@pytest.mark.parametrize("name", ["0755", "off", "2024-01-01", "@x", "a\tb", "true", "1e3", "null-run"])
def test_a_string_key_keeps_the_exact_text_given_on_the_command_line(name):
    assert load_config(None, [f"run.name={name}"]).run.name == name


def test_a_string_key_keeps_the_exact_text_written_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  name: digits\nrun:\n  name: 0755\n  out_dir: off\nmodel:\n  pretrained: 2024-01-01\n")
    cfg = load_config(path)
    assert (cfg.run.name, cfg.run.out_dir, cfg.model.pretrained) == ("0755", "off", "2024-01-01")


@pytest.mark.parametrize("text", ["null", "none", "", "~"])
def test_a_key_that_may_be_unset_takes_null(text):
    assert load_config(None, ["run.name=x", f"run.name={text}"]).run.name is None


def test_a_bool_key_takes_true_or_false_and_names_them_otherwise():
    assert load_config(None, ["method.ablation.mining=False"]).method.ablation.mining is False
    with pytest.raises(ActError, match=r"method.ablation.mining must be true or false, got 'off'"):
        load_config(None, ["method.ablation.mining=off"])


def test_an_int_key_reads_a_leading_zero_as_decimal():
    assert load_config(None, ["optim.epochs=010"]).optim.epochs == 10


def test_the_resolved_config_reads_back_to_the_same_values(tmp_path):
    from act.config import dump_yaml

    cfg = load_config(None, ["run.name=0755", "optim.lr=1e-5", "model.pretrained=off"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("override,message", [
    ("run.seed=-1", "run.seed=-1 must be >= 0"),
    ("run.seed=4294967296", "run.seed=4294967296 must be <= 4294967295 (numpy's seeds are 32-bit unsigned)"),
    ("data.noise.seed=-3", "data.noise.seed=-3 must be >= 0"),
    ("run.name=" + "x" * 300, "run.name is 300 bytes long; a folder name may hold at most 255"),
    ("run.name=a/b", "run.name='a/b' must be one folder name"),
    ("run.name=..", "must be one folder name"),
])
def test_seeds_and_run_names_out_of_range_are_refused(override, message):
    with pytest.raises(ActError) as info:
        load_config(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", ["optim:\n  epochs: 3\n".encode("utf-16"), bytes(range(256)) * 4,
                                     b"\x89PNG\r\n\x1a\n\x00\x00"], ids=["utf-16", "binary", "png"])
def test_a_config_file_that_is_not_utf8_text_is_one_line_naming_it(tmp_path, capsys, content):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


def test_a_yaml_syntax_error_is_one_line_naming_the_file(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("optim: {epochs: [\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"config file {path} is not valid YAML" in err


def test_overrides_on_both_sides_of_config_apply_after_the_file_in_order(tmp_path, monkeypatch):
    from act.commands import cli

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  name: digits\noptim:\n  epochs: 3\n  lr: 0.5\n")
    seen = {}

    def fake_run(args, stdout):
        seen["cfg"] = load_config(args.config, args.overrides)
        return 0

    monkeypatch.setattr(cli, "run_command", fake_run)
    assert main(["train", "optim.epochs=7", "optim.lr=0.1", "--config", str(path), "optim.lr=0.2"]) == 0
    assert seen["cfg"].optim.epochs == 7 and seen["cfg"].optim.lr == 0.2


def test_an_unknown_option_after_overrides_is_still_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "optim.epochs=1", "--fast"])
    assert info.value.code == 2 and "unrecognized arguments: --fast" in capsys.readouterr().err


@pytest.mark.parametrize("text,line", [
    ("optim:\n  lr: 0.02\ndata:\n  name: digits\noptim:\n  epochs: 3\n", "line 5 gives 'optim' a second time"),
    ("optim:\n  lr: 0.02\n  lr: 0.03\n", "line 3 gives 'lr' a second time"),
], ids=["section", "key"])
def test_a_section_or_key_given_twice_is_refused_naming_its_line(tmp_path, capsys, text, line):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"config file {path}: {line}" in err


def test_a_yaml_alias_is_refused_before_it_grows(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path.write_text("\n".join(levels) + "\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 2 uses an alias (*a0)" in err


@pytest.mark.parametrize("name", ["folder", "/dev/zero", "/dev/null"])
def test_a_config_path_that_is_not_a_regular_file_is_named_so(tmp_path, capsys, name):
    path = tmp_path if name == "folder" else Path(name)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"act: error: config file {path} is not a regular file (a folder or a device?); name a YAML file\n"


@pytest.mark.parametrize("override,message", [
    ("optim.warmup_epochs=400000000", "optim.warmup_epochs=400000000 must be <= 100000 (the learning-rate plans"),
    ("optim.epochs=400000000", "optim.epochs=400000000 must be <= 100000"),
    ("data.image_size=30000", "data.image_size=30000 must be <= 2048 (a batch of larger images takes gigabytes)"),
    ("run.threads=1000000000", "run.threads=1000000000 must be <= 1024 (torch's thread pool)"),
    ("run.dist_timeout=2147483648", "run.dist_timeout=2147483648 must be <= 604800"),
    ("pipeline.workers=100000", "pipeline.workers=100000 must be <= 256"),
    ("optim.lr_decay=cosine:0,0,400000000", "E must be <= 100000 (the plan holds one rate per epoch)"),
    ("optim.ntm_lr_plan=step:400000000,0.1", "optim.ntm_lr_plan='step:400000000,0.1' must be own, shared"),
])
def test_a_number_beyond_what_the_machine_holds_is_refused_naming_the_bound(override, message):
    with pytest.raises(ActError) as info:
        load_config(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("key", [k for k in all_keys() if type(get_key(Config(), k)) is int])
def test_every_integer_key_refuses_a_value_past_a_c_int(key):
    with pytest.raises(ActError, match=re.escape(f"{key}={2**63} must be <= ")):
        load_config(None, [f"{key}={2**63}"])


def test_the_help_names_the_net_each_learning_rate_drives():
    """The keys keep the public scripts' names (lr, lr1); the help says which net each drives."""
    from act.config import describe_keys
    lines = {line.split(" = ")[0].strip(): line for line in describe_keys().splitlines()}
    assert "RTM" in lines["optim.lr"] and "NTM" not in lines["optim.lr"]
    assert "NTM" in lines["optim.lr1"] and "RTM" not in lines["optim.lr1"]
    assert "warm-up" in lines["optim.warmup_lr"]
