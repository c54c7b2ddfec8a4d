"""The `act train` commands of README.md's shell examples start a run as written: their config and
overrides load, and a Web-*/Food-101N example gives model.pretrained (a run without it is refused)."""
import re
import shlex
from pathlib import Path

import pytest

from act.config import load_config
from act.run.build import check_weights

ROOT = Path(__file__).resolve().parent.parent


def train_examples() -> list[list[str]]:
    """The arguments after `act train` of every new run (not --resume, not --help) in README.md's
    bash blocks, a line continued by a backslash read as one."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            for i in range(len(tokens) - 1):
                if tokens[i:i + 2] == ["act", "train"] and not {"--resume", "--help"} & set(tokens[i + 2:]):
                    examples.append(tokens[i + 2:])
    return examples


def test_the_readme_has_the_torchrun_food101n_examples():
    configs = [args[args.index("--config") + 1] for args in train_examples() if "--config" in args]
    assert configs.count("configs/food101n.yaml") == 2 and "configs/web/aircraft.yaml" in configs


@pytest.mark.parametrize("args", train_examples(), ids=" ".join)
def test_a_readme_train_example_is_not_refused_for_want_of_weights(args):
    config = args[args.index("--config") + 1] if "--config" in args else None
    overrides = [a for a in args if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+=.*", a)]
    cfg = load_config(str(ROOT / config) if config else None, overrides)
    check_weights(cfg)
