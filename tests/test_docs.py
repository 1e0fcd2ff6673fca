"""`make docs`: the API reference builds from the docstrings without a warning."""

import subprocess
import sys

import pytest

from tests.scripts import ROOT, load_script

BUILD = str(ROOT / "docs" / "build.py")


docs_build = load_script("docs/build.py")


def test_an_unresolvable_name_fails_the_build(tmp_path, monkeypatch):
    package = tmp_path / "src" / "brokendocs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        '"""A package whose __all__ names what it does not have."""\n__all__ = ["missing"]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    problems = docs_build.build(str(tmp_path / "out"), package="brokendocs")
    assert len(problems) == 1 and "'missing'" in problems[0]


def test_lazy_exports_are_documented(tmp_path, monkeypatch):
    package = tmp_path / "src" / "lazydocs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        '"""Names imported on first use."""\n'
        '__all__ = ["answer"]\n\n\n'
        "def __getattr__(name):\n"
        '    if name == "answer":\n'
        "        from lazydocs.impl import answer\n\n"
        "        return answer\n"
        "    raise AttributeError(name)\n"
    )
    (package / "impl.py").write_text(
        'def answer():\n    """The answer, documented where it lives."""\n    return 42\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    assert docs_build.build(str(tmp_path / "out"), package="lazydocs") == []
    page = (tmp_path / "out" / "lazydocs.html").read_text()
    assert "The answer, documented where it lives." in page


@pytest.mark.slow
def test_make_docs_builds_kcnn_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, BUILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(0 warnings)" in result.stderr
    data = (tmp_path / "kcnn" / "data.html").read_text()
    assert 'id="load"' in data and 'id="make_dataset"' in data  # kcnn.data's lazy exports
    assert (tmp_path / "kcnn" / "models.html").exists()
