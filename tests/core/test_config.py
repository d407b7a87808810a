"""Herd configuration: the CS 131 default and TOML files."""

from pathlib import Path

import pytest

from trioherd.core.config import CS131_HERD, ConfigError, load_herd, parse_herd


def test_cs131_herd_matches_protocol_md() -> None:
    assert CS131_HERD.names == ("Hill", "Jaquez", "Smith", "Campbell", "Singleton")
    links = {s.name: set(s.peers) for s in CS131_HERD.servers}
    assert links == {
        "Hill": {"Jaquez", "Smith"},
        "Jaquez": {"Hill", "Singleton"},
        "Smith": {"Hill", "Singleton", "Campbell"},
        "Campbell": {"Smith", "Singleton"},
        "Singleton": {"Jaquez", "Smith", "Campbell"},
    }
    assert [(s.host, s.port) for s in CS131_HERD.servers] == [
        ("127.0.0.1", p) for p in range(8000, 8005)
    ]


def test_a_link_on_either_side_exists_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "herd.toml"
    path.write_text(
        '[servers.Hill]\nhost = "127.0.0.1"   # optional\nport = 9000\npeers = ["Jaquez"]\n'
        "[servers.Jaquez]\nport = 9001\n"
        "[servers.Smith]\nport = 9002\npeers = ['Jaquez']\n"
    )
    herd = load_herd(path)
    assert herd["Jaquez"].peers == ("Hill", "Smith")
    assert herd["Hill"].peers == ("Jaquez",)
    assert herd["Jaquez"].host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[servers.Hill\n", "not valid TOML"),
        ("", "no [servers.NAME] tables"),
        ("[servers.Hill]\nport = 'x'\n", "port must be an integer"),
        ("[servers.Hill]\nport = true\n", "port must be an integer"),
        ("[servers.Hill]\nport = 70000\n", "not in 0-65535"),
        ("[servers.Hill]\nport = 1\npeers = ['Nobody']\n", "'Nobody' is not a server"),
        ("[servers.Hill]\nport = 1\npeers = ['Hill']\n", "its own peer"),
        ("[servers.Hill]\nport = 1\npeers = 'Jaquez'\n", "list of names"),
        ("[servers.Hill]\nport = 1\nprot = 2\n", "unknown key 'prot'"),
        ("[servers.Hill]\nport = 1\n[servers.Smith]\nport = 1\n", "both use 127.0.0.1:1"),
        ('[servers."Hill Top"]\nport = 1\n', "must be 1-64 letters"),
        ("servers = 3\n", "no [servers.NAME] tables"),
    ],
)
def test_bad_configs_say_what_is_wrong_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="herd.toml: .*" + message.replace("[", r"\[")) as info:
        parse_herd(text, "herd.toml")
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_herd(tmp_path / "missing.toml")


def test_unknown_server_name_lists_the_herd() -> None:
    with pytest.raises(ConfigError, match="unknown server 'Westwood'; this herd has Hill, "):
        CS131_HERD["Westwood"]


def test_state_dir_from_toml_is_relative_to_the_file(tmp_path: Path) -> None:
    from trioherd.options import parse_options

    config = tmp_path / "herd.toml"
    config.write_text('state_dir = "journals"\n[servers.Hill]\nport = 0\n')
    assert parse_herd(config.read_text()).state_dir == "journals"
    options = parse_options(["Hill", "--config", str(config)], "test")
    assert options.state_dir == tmp_path / "journals"
    given = parse_options(["Hill", "--config", str(config), "--state-dir", "x"], "test")
    assert given.state_dir == Path("x")
    assert parse_options(["Hill"], "test").state_dir is None
    with pytest.raises(ConfigError, match="state_dir"):
        parse_herd("state_dir = 5\n[servers.Hill]\nport = 0\n")
