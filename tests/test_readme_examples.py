"""The `act train` commands of the shell examples in README.md and docs/*.md start a run as written:
their config and overrides load, and a Web-*/Food-101N example gives model.pretrained (a run
without it is refused)."""
import re
import shlex
from pathlib import Path

import pytest

from act.config import load_config
from act.run.preflight import check_weights

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def train_examples() -> list[tuple[str, list[str], list[str]]]:
    """(page, the words before `act train`, the arguments after it) of every new run (not
    --resume, not --help) in the pages' bash blocks, a line continued by a backslash read as one."""
    examples = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                tokens = shlex.split(line, comments=True)
                for i in range(len(tokens) - 1):
                    if tokens[i:i + 2] == ["act", "train"] and not {"--resume", "--help"} & set(tokens[i + 2:]):
                        examples.append((page.name, tokens[:i], tokens[i + 2:]))
    return examples


def config_of(args: list[str]) -> str | None:
    return args[args.index("--config") + 1] if "--config" in args else None


def test_the_torchrun_food101n_examples_are_read_across_their_continued_lines():
    torchrun = [(page, config_of(args)) for page, before, args in train_examples() if "torchrun" in before]
    assert torchrun == [("distributed.md", "configs/food101n.yaml")] * 2


def test_the_readme_has_a_cifar_and_a_web_example():
    configs = [config_of(args) for page, _, args in train_examples() if page == "README.md"]
    assert "configs/cifar100n/sym20.yaml" in configs and "configs/web/aircraft.yaml" in configs


@pytest.mark.parametrize("args", [args for _, _, args in train_examples()], ids=" ".join)
def test_a_documented_train_example_is_not_refused_for_want_of_weights(args):
    config = config_of(args)
    overrides = [a for a in args if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+=.*", a)]
    cfg = load_config(str(ROOT / config) if config else None, overrides)
    check_weights(cfg)
