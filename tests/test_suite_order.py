"""The order the xdist workers take the modules in (tests/conftest.py) names real modules."""

from tests.conftest import HEAVIEST_FIRST
from tests.utils.processes import REPO_ROOT


def test_every_module_handed_out_first_exists() -> None:
    assert [path for path in HEAVIEST_FIRST if not (REPO_ROOT / path).is_file()] == []
    assert len(set(HEAVIEST_FIRST)) == len(HEAVIEST_FIRST)
