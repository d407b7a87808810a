"""The hardening options: the herd secret from a file or the TOML, the limits."""

from pathlib import Path

import pytest

from trioherd.core.config import ConfigError, parse_herd
from trioherd.core.limits import DEFAULT_LIMITS
from trioherd.options import parse_options

TOML = '[servers.Hill]\nport = 0\nherd_secret_file = "x"\n'


def test_the_secret_file_in_the_toml_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "herd.secret").write_text("  a secret of more than sixteen bytes \n")
    config = tmp_path / "herd.toml"
    config.write_text('herd_secret_file = "herd.secret"\n[servers.Hill]\nport = 0\n')
    options = parse_options(["Hill", "--config", str(config)], "prog")
    assert options.herd_secret == b"a secret of more than sixteen bytes"
    assert "sixteen" not in repr(options)


def test_unknown_keys_in_a_server_table_are_still_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key 'herd_secret_file'"):
        parse_herd(TOML)


def test_a_short_secret_is_refused_without_being_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "s"
    secret.write_text("hunter2")
    with pytest.raises(SystemExit) as exit_info:
        parse_options(["Hill", "--herd-secret-file", str(secret)], "prog")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "shorter than 16 bytes" in err
    assert "hunter2" not in err


def test_limits_have_their_defaults_and_the_caps_follow_the_descriptor_limit() -> None:
    options = parse_options(["Hill"], "prog")
    assert options.limits.idle_timeout == DEFAULT_LIMITS.idle_timeout
    assert options.limits.max_clients == DEFAULT_LIMITS.max_clients
    assert 0 < options.limits.max_connections == options.limits.max_per_address
    custom = parse_options(
        ["Hill", "--max-connections", "50", "--max-connections-per-address", "5"], "prog"
    )
    assert (custom.limits.max_connections, custom.limits.max_per_address) == (50, 5)


def test_negative_limits_are_one_line_errors() -> None:
    with pytest.raises(SystemExit):
        parse_options(["Hill", "--idle-timeout", "-1"], "prog")
