"""The shipped example configs and the README's config stay valid."""

import re
import tomllib
from pathlib import Path

import pytest

from gradsweep import Config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_validate(path):
    assert Config.from_toml(path).total_samples > 0


def test_readme_config_block_validates():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    cfg = Config.from_dict(tomllib.loads(block))
    assert cfg.theta.size == 61 and cfg.sigma.size == 21


def test_classic_example_is_the_demo():
    from gradsweep.cli import DEMO

    assert Config.from_toml(ROOT / "examples" / "classic.toml").to_dict() == Config.from_dict(DEMO).to_dict()


def test_readme_estimator_table_lists_every_estimator_with_its_cost():
    from gradsweep.estimators import ESTIMATORS

    text = (ROOT / "README.md").read_text()
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `(\w+)` \|.*\| (\d+) \| [^|]+ \|$", text, re.M)}
    assert rows == {name: e.cost for name, e in ESTIMATORS.items()}
