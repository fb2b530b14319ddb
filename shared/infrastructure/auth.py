"""Auth primitives: password hashing (argon2), JWT tokens, API-key secrets."""

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "wims_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# The claim carrying the user's token_version (shared/persistence/models.py User): a token whose
# version is not the user's current one is revoked.
VERSION_CLAIM = "ver"


def create_access_token(
    subject: int,
    role: str,
    secret: str,
    ttl: timedelta,
    now: datetime | None = None,
    version: int = 0,
) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(subject),
        "role": role,
        VERSION_CLAIM: version,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, secret: str | Sequence[str]) -> dict[str, Any]:
    """Raises jwt.PyJWTError when the token is forged, malformed or expired.

    ``secret`` may be several: the current one and those of a key rotation still accepted
    (Settings.jwt_verification_secrets); a token verifies if any of them signed it."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    for key in keys:
        try:
            return jwt.decode(
                token, key, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidSignatureError:
            continue  # signed with another of the accepted keys, maybe
    raise jwt.InvalidSignatureError("Signature verification failed")


def token_version(claims: dict[str, Any]) -> int:
    """The token's version claim; tokens made before versions existed count as version 0."""
    version = claims.get(VERSION_CLAIM, 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise jwt.InvalidTokenError(f"{VERSION_CLAIM} claim is not an integer")
    return version


def new_api_key() -> tuple[str, str, str]:
    """A fresh API key: (secret shown once, prefix for lookup, hash stored)."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[: len(API_KEY_PREFIX) + 6], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    # A key is 256 random bits: a fast hash is safe (no dictionary to attack) and keeps
    # every ingest request cheap, unlike a password hash.
    return hashlib.sha256(secret.encode()).hexdigest()
