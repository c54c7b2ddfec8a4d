"""README.md is the guide and docs/*.md the reference it links: every relative link between them
resolves (to a file, and to a heading where a #fragment names one), and the README stays short and
opens with the demo and the test command, which CI runs."""
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(page: Path) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated heading numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        found.add(slug if seen[slug] == 0 else f"{slug}-{seen[slug]}")
    return found


def relative_links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in LINK.findall(prose(page))
            if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page,target", relative_links(),
                         ids=[f"{page.name}->{target}" for page, target in relative_links()])
def test_a_relative_link_names_a_file_and_heading_that_exist(page, target):
    path, _, fragment = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    assert linked.exists(), f"{page.name} links {target}: no file {linked}"
    if fragment:
        assert fragment in anchors(linked), f"{page.name} links {target}: no such heading in {linked.name}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.partition("#")[0] for target in LINK.findall(prose(ROOT / "README.md"))}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= linked


def test_the_readme_is_a_guide_of_at_most_250_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_the_readme_opens_with_the_demo_then_the_test_command():
    first_block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    commands = [shlex.split(line, comments=True) for line in first_block.splitlines()]
    assert [c for c in commands if c][:2] == [["pip", "install", "-e", ".", "&&", "act", "train"],
                                              ["pip", "install", "-e", ".[test]", "&&", "pytest"]]


# The CIFAR roots as docs/data.md names them: CIFAR-100's folder (or its tarball), CIFAR-10's, and a
# folder holding both (the CIFAR-N human-label sweep).
CIFAR_ROOTS = {"/data/cifar-100-python", "/data/cifar-100-python.tar.gz", "/data/cifar-10-batches-py", "/data/cifar"}


def test_a_cifar_root_is_spelled_one_way_in_the_readme_the_docs_the_help_and_the_configs():
    from act.commands.cli import EXAMPLES

    texts = [page.read_text(encoding="utf-8") for page in PAGES] + [EXAMPLES]
    texts += [path.read_text(encoding="utf-8") for path in sorted((ROOT / "configs").rglob("*.yaml"))]
    spelled = {root.rstrip(".,:;") for text in texts for root in re.findall(r"data\.root=(/data/cifar[^\s`'\")]*)", text)}
    assert spelled and spelled <= CIFAR_ROOTS, spelled - CIFAR_ROOTS
