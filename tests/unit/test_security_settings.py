"""The JWT signing secret: never a published default, one per install, agreed on by every
process of a run folder; production brings its own, long enough; rotation keeps old tokens
valid until their secret is removed."""

import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from services.cli import uvicorn_options
from shared.infrastructure.auth import create_access_token, decode_access_token
from shared.infrastructure.settings import JWT_SECRET_FILE, PROJECT_ROOT, Settings

# The development value the repository used to publish (shared/infrastructure/settings.py before this
# change): anyone could sign an admin token with it.
PUBLISHED_SECRET = "development-only-secret-change-me"
STRONG = "s" * 32


@pytest.fixture(autouse=True)
def _no_secret_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WIMS_JWT_SECRET", "WIMS_JWT_PREVIOUS_SECRETS", "WIMS_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)


def test_unset_secret_is_a_random_private_file_of_the_run_folder(tmp_path: Path) -> None:
    first = Settings(run_dir=tmp_path)
    secret_file = tmp_path / JWT_SECRET_FILE
    assert first.jwt_secret != PUBLISHED_SECRET
    assert len(first.jwt_secret.encode()) >= 32
    assert secret_file.read_text().strip() == first.jwt_secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert Settings(run_dir=tmp_path).jwt_secret == first.jwt_secret, "read back, not remade"
    assert Settings(run_dir=tmp_path / "other").jwt_secret != first.jwt_secret, "per install"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [JWT_SECRET_FILE]


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    """`wims up` starts five services at once on a fresh run folder: they must all sign and
    verify with the same secret."""
    code = "from shared.infrastructure.settings import Settings; print(Settings().jwt_secret)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIMS_JWT")}
    env["WIMS_RUN_DIR"] = str(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE
        )
        for _ in range(8)
    ]
    secrets = {p.communicate(timeout=60)[0].decode().strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert secrets == {(tmp_path / JWT_SECRET_FILE).read_text().strip()}
    assert len(next(iter(secrets))) >= 32


def test_a_truncated_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / JWT_SECRET_FILE).write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        Settings(run_dir=tmp_path)


def test_production_requires_a_long_enough_secret_and_invents_none(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="WIMS_JWT_SECRET is not set"):
        Settings(run_dir=tmp_path, environment="production")
    assert not (tmp_path / JWT_SECRET_FILE).exists()
    with pytest.raises(ValueError, match="WIMS_JWT_SECRET: a secret is shorter than 32"):
        Settings(run_dir=tmp_path, environment="production", jwt_secret="x" * 31)
    with pytest.raises(ValueError, match="WIMS_JWT_PREVIOUS_SECRETS"):
        Settings(
            run_dir=tmp_path,
            environment="production",
            jwt_secret=STRONG,
            jwt_previous_secrets="old",
        )
    assert Settings(environment="production", jwt_secret=STRONG).jwt_secret == STRONG


def test_rotation_verifies_previous_secrets_until_they_are_removed(tmp_path: Path) -> None:
    old, new = "o" * 32, "n" * 32
    ttl = timedelta(minutes=5)
    old_token = create_access_token(1, "admin", old, ttl)
    rotating = Settings(run_dir=tmp_path, jwt_secret=new, jwt_previous_secrets=f" {old} ,")
    assert rotating.jwt_verification_secrets == [new, old]
    assert decode_access_token(old_token, rotating.jwt_verification_secrets)["sub"] == "1"
    # New tokens are signed with the current secret only.
    new_token = create_access_token(2, "viewer", rotating.jwt_secret, ttl)
    assert decode_access_token(new_token, [new])["sub"] == "2"
    with pytest.raises(jwt.InvalidSignatureError):
        decode_access_token(new_token, [old])
    done = Settings(run_dir=tmp_path, jwt_secret=new)
    with pytest.raises(jwt.InvalidSignatureError):
        decode_access_token(old_token, done.jwt_verification_secrets)


def test_an_expired_token_stays_expired_whichever_secret_signed_it() -> None:
    token = create_access_token(1, "admin", STRONG, timedelta(minutes=-1))
    with pytest.raises(jwt.ExpiredSignatureError):
        decode_access_token(token, ["x" * 32, STRONG])


def test_uvicorn_believes_forwarded_headers_only_from_trusted_proxies(tmp_path: Path) -> None:
    options = uvicorn_options(Settings(run_dir=tmp_path))
    # uvicorn's own default believes X-Forwarded-* from 127.0.0.1.
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == []
    assert options["server_header"] is False
    behind = uvicorn_options(Settings(run_dir=tmp_path, trusted_proxies="10.0.0.0/8, 192.168.1.7"))
    assert behind["proxy_headers"] is True
    assert behind["forwarded_allow_ips"] == ["10.0.0.0/8", "192.168.1.7"]


def test_docs_are_off_in_production_unless_asked_for(tmp_path: Path) -> None:
    assert Settings(run_dir=tmp_path).docs_enabled
    assert Settings(run_dir=tmp_path, environment="test").docs_enabled
    prod = {"environment": "production", "jwt_secret": STRONG}
    assert not Settings(**prod).docs_enabled
    assert Settings(**prod, api_docs_enabled=True).docs_enabled
