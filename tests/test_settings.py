"""Settings: VIDAGENT_HOME read at call time, subpaths, and one-line ConfigErrors for bad values."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from vidagent.core.errors import ConfigError
from vidagent.core.settings import VidagentSettings, load_settings
from vidagent.store.perception import PerceptionStore


def test_home_comes_from_the_environment_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "one"))
    first = load_settings()
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "two"))
    second = load_settings()
    assert first.home == tmp_path / "one" and second.home == tmp_path / "two"
    assert second.store_dir == tmp_path / "two" / "store"
    assert second.models_dir == tmp_path / "two" / "models"
    assert second.runs_dir == tmp_path / "two" / "runs"
    assert not (tmp_path / "two").exists()  # loading settings creates nothing


def test_default_home_is_the_user_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDAGENT_HOME", raising=False)
    assert load_settings().home == Path(platformdirs.user_cache_dir("vidagent")).absolute()


def test_overrides_beat_the_environment_and_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "env"))
    assert load_settings(home=tmp_path / "kw").home == tmp_path / "kw"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert load_settings(home="rel/../cache").home == tmp_path / "cache"
    assert load_settings(home="~/vh").home == tmp_path / "user" / "vh"


def test_unrelated_vidagent_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDAGENT_TEST_VLLM_URL", "http://localhost:8000")
    monkeypatch.setenv("VIDAGENT_SOMETHING_ELSE", "x")
    assert isinstance(load_settings(), VidagentSettings)


@pytest.mark.parametrize("kind", ["file", "empty"])
def test_a_bad_home_from_the_environment_is_a_one_line_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    bad = ""
    if kind == "file":
        (tmp_path / "afile").write_text("x")
        bad = str(tmp_path / "afile")
    monkeypatch.setenv("VIDAGENT_HOME", bad)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "VIDAGENT_HOME" in message and repr(bad) in message and "\n" not in message
    assert ("not a directory" if kind == "file" else "empty") in message


def test_unknown_or_mistyped_overrides_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'hom'"):
        load_settings(hom="/tmp/x")
    with pytest.raises(ConfigError, match=r"setting home .* = 3"):
        load_settings(home=3)


def test_the_store_opens_in_the_settings_store_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "vh"))
    store = PerceptionStore.from_settings(load_settings())
    assert store.root == tmp_path / "vh" / "store"
    assert (tmp_path / "vh" / "store" / "store.sqlite3").is_file()
