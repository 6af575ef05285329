"""config.py: the settings table, defaults, refusals, development secrets and the README's generated tables."""
from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import config
from config import NOT_YET_READ, SETTING, SETTINGS, Config, ConfigError

ROOT = Path(__file__).resolve().parents[2]
KEY = "k1:" + "A" * 43
SECRETS = {"JWT_SECRET": "s" * 40, "MESSAGE_KEYS": KEY, "VAPID_PRIVATE_KEY": "v" * 43}
PRODUCTION = {"CARELINE_ENV": "production", "MONGODB_URI": "mongodb://db.invalid:27017", **SECRETS}


def _dev(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path), **SECRETS, **extra}


def _refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- the table ----------------------------------------------------------------------------------------

def test_every_config_field_has_exactly_one_setting() -> None:
    names = [f.name for f in dataclasses.fields(Config) if f.name != "notices"]
    assert sorted(s.field for s in SETTINGS) == sorted(names)
    assert len(SETTING) == len(SETTINGS)


def test_settings_nothing_reads_yet_are_marked() -> None:
    later = {s.env for s in SETTINGS if s.status == NOT_YET_READ}
    assert later == set()


def test_config_is_a_bottom_module() -> None:
    tree = ast.parse((ROOT / "config.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = {"handlers", "stores", "realtime", "rest", "aiohttp", "socketio", "engineio", "pymongo", "redis"}
    assert not imported & forbidden


# -- defaults -----------------------------------------------------------------------------------------

def test_defaults_are_the_config_field_defaults(tmp_path: Path) -> None:
    built = Config.from_env(_dev(tmp_path))
    assert built.message_keys == config.parse_message_keys(KEY) and built.data_dir == tmp_path
    assert built.mongodb_pool_size == 8 and built.embedded_mongo and not built.production
    given = {"jwt_secret", "message_keys", "vapid_private_key", "data_dir", "mongodb_pool_size"}
    for f in dataclasses.fields(Config):
        if f.name not in given | {"notices"}:
            assert getattr(built, f.name) == f.default, f.name
    assert built.notices == ()


def test_pool_size_default_depends_on_the_database(tmp_path: Path) -> None:
    assert Config.from_env(_dev(tmp_path, MONGODB_URI="mongodb://db.invalid")).mongodb_pool_size == 100
    assert Config.from_env(_dev(tmp_path, MONGODB_URI="mongodb://x", MONGODB_POOL_SIZE="7")).mongodb_pool_size == 7


def test_values_are_parsed_and_empty_means_unset(tmp_path: Path) -> None:
    built = Config.from_env(_dev(tmp_path, PORT=" 9000 ", PING_INTERVAL_SECONDS="0.5", RUN_WORKER_IN_WEB="off",
                                 CORS_ORIGINS="https://a.example, https://b.example", LOG_LEVEL="debug",
                                 LOG_FORMAT="JSON", CHAT_BLOCKLIST_FILE="/tmp/block", HOST="",
                                 CARELINE_ENV=" Development "))
    assert (built.port, built.ping_interval, built.run_worker_in_web) == (9000, 0.5, False)
    assert built.cors_origins == ("https://a.example", "https://b.example")
    assert (built.log_level, built.log_format, built.host) == ("DEBUG", "json", "0.0.0.0")
    assert built.chat_blocklist_file == Path("/tmp/block") and built.env == "development"


# -- refusals -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [s.env for s in SETTINGS if s.kind in (config.INTEGER, config.NUMBER)])
def test_a_non_number_is_refused_naming_the_variable(tmp_path: Path, name: str) -> None:
    message = _refusal(_dev(tmp_path, **{name: "twelve"}))
    assert message.startswith(name) and "twelve" in message


@pytest.mark.parametrize("name", [s.env for s in SETTINGS if s.kind is config.FLAG])
def test_a_non_boolean_is_refused_naming_the_variable(tmp_path: Path, name: str) -> None:
    assert _refusal(_dev(tmp_path, **{name: "maybe"})).startswith(name)


@pytest.mark.parametrize("name,value", [
    ("PORT", "70000"), ("PORT", "-1"), ("MONGODB_POOL_SIZE", "0"), ("PING_INTERVAL_SECONDS", "0"),
    ("PING_TIMEOUT_SECONDS", "inf"), ("CONNECT_TIMEOUT_SECONDS", "nan"), ("SOCKET_BACKLOG_MAX_BYTES", "65535"),
    ("RATE_LIMIT_BURST", "0"), ("CHAT_WRITE_INTERVAL_MS", "500"), ("CHAT_WRITE_INTERVAL_MS", "-1"),
    ("CHAT_EDIT_WINDOW_MINUTES", "-5"), ("PLATFORM_COMMISSION_RATE", "1"), ("PUSH_CONCURRENCY", "0"),
    ("CARELINE_ENV", "staging"), ("LOG_LEVEL", "LOUD"), ("LOG_FORMAT", "xml"),
    ("MESSAGE_KEYS", "no-colon"), ("MESSAGE_KEYS", "k1:c2hvcnQ"), ("MESSAGE_KEYS", "k1:#not*base64#"),
    ("MESSAGE_KEYS", ","),
])
def test_an_out_of_bounds_value_is_refused_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    assert name in _refusal(_dev(tmp_path, **{name: value}))


def test_the_boundaries_themselves_are_allowed(tmp_path: Path) -> None:
    built = Config.from_env(_dev(tmp_path, SOCKET_BACKLOG_MAX_BYTES="65536", CHAT_WRITE_INTERVAL_MS="100",
                                 PLATFORM_COMMISSION_RATE="0", CHAT_EDIT_WINDOW_MINUTES="0", PORT="0"))
    assert (built.socket_backlog_max_bytes, built.chat_write_interval_ms) == (65536, 100)


def test_validate_checks_a_config_built_directly() -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT must be 'text' or 'json'"):
        Config(jwt_secret="s", message_keys=config.parse_message_keys(KEY), log_format="xml").validate()
    with pytest.raises(ConfigError, match="JWT_SECRET or JWT_PUBLIC_KEY must be set"):
        Config(message_keys=config.parse_message_keys(KEY)).validate()


# -- production ---------------------------------------------------------------------------------------

def test_production_accepts_a_complete_environment(tmp_path: Path) -> None:
    built = Config.from_env({**PRODUCTION, "DATA_DIR": str(tmp_path)})
    assert built.production and built.mongodb_pool_size == 100 and built.notices == ()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("missing,expected", [
    ("MONGODB_URI", "production mode refuses the embedded database: set MONGODB_URI"),
    ("JWT_SECRET", "production mode needs JWT_SECRET or JWT_PUBLIC_KEY"),
    ("MESSAGE_KEYS", "production mode needs MESSAGE_KEYS"),
    ("VAPID_PRIVATE_KEY", "production mode needs VAPID_PRIVATE_KEY"),
])
def test_production_refuses_missing_secrets_and_the_embedded_database(tmp_path: Path, missing: str,
                                                                      expected: str) -> None:
    environ = {**PRODUCTION, "DATA_DIR": str(tmp_path), missing: ""}
    assert _refusal(environ) == expected
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_takes_a_public_key_instead_of_a_jwt_secret(tmp_path: Path) -> None:
    built = Config.from_env({**PRODUCTION, "JWT_SECRET": "", "JWT_PUBLIC_KEY": "PEM", "DATA_DIR": str(tmp_path)})
    assert built.jwt_secret is None and built.jwt_public_key == "PEM"


# -- development secrets ------------------------------------------------------------------------------

def test_development_secrets_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = Config.from_env({"DATA_DIR": str(tmp_path)})
    path = tmp_path / "dev-secrets.json"
    assert oct(path.stat().st_mode)[-3:] == "600"
    assert first.jwt_secret and first.vapid_private_key and len(first.message_keys) == 1
    assert len(first.notices) == 1 and str(path) in first.notices[0]
    assert "JWT signing secret, message encryption key, Web Push VAPID key" in first.notices[0]
    stored = path.read_text()
    second = Config.from_env({"DATA_DIR": str(tmp_path)})
    assert path.read_text() == stored
    assert (second.jwt_secret, second.message_keys, second.vapid_private_key) == (
        first.jwt_secret, first.message_keys, first.vapid_private_key)


def test_development_generates_only_what_is_missing(tmp_path: Path) -> None:
    built = Config.from_env({"DATA_DIR": str(tmp_path), "JWT_PUBLIC_KEY": "PEM", "MESSAGE_KEYS": KEY})
    assert built.jwt_secret is None and built.vapid_private_key
    assert "Web Push VAPID key" in built.notices[0] and "JWT" not in built.notices[0]
    assert Config.from_env(_dev(tmp_path / "other")).notices == ()
    assert not (tmp_path / "other").exists()


# -- README -------------------------------------------------------------------------------------------

def test_readme_configuration_tables_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == config.with_readme_section(readme, config.markdown()), (
        "README.md's configuration tables differ from config.SETTINGS: "
        "run `python -m config --write-readme` (it rewrites the part between the config:start/end markers)")


def test_markdown_command_prints_the_tables() -> None:
    result = subprocess.run([sys.executable, "-m", "config", "--markdown"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, check=True)
    assert result.stdout == config.markdown()
    assert "| `PORT` | `8080` | integer, between 0 and 65535 |" in result.stdout
    later = [s.env for s in SETTINGS if s.status == NOT_YET_READ]
    if later:
        assert result.stdout.index(f"`{later[0]}`") > result.stdout.index("Settings of features not yet built")
