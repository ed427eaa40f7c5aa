"""The local stack's JWT issuer: what the HTTP API's JWT authorizer trusts when ``make run`` serves it.

On AWS the HTTP API trusts the OIDC issuer named by ``HttpApiJwtIssuer`` (e.g. a Cognito user
pool) and fetches its keys from the issuer's JWKS. Locally there is no such provider (and no
network), so the stack stands in for it: an RSA key of its own, kept in the state directory
(``jwt-key.pem``; ``make clean-state`` replaces it), whose public half is served as a JWKS at
``/.well-known/jwks.json`` of the local HTTP API, and with which this module mints tokens whose
``iss`` is the configured issuer::

    .venv/bin/python -m local.jwt_issuer --sub orders-service          # prints a bearer token

``verify`` checks a token as API Gateway's JWT authorizer does
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html):
RS256 with a known ``kid``, ``iss`` equal to the issuer, ``aud`` (or, when there is no ``aud``,
``client_id``) one of the audiences, ``exp`` in the future, ``nbf``/``iat`` not in the future.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "jwt-key.pem"
ALGORITHM = "RS256"
DEFAULT_TTL = 3600
ISSUER_VARIABLE = "CORRELATOR_PARAM_" + "HttpApiJwtIssuer"  # template parameter names keep their case
AUDIENCE_VARIABLE = "CORRELATOR_PARAM_" + "HttpApiJwtAudience"


class Unauthorized(Exception):
    """The token is refused; the message is API Gateway's ``error_description``."""


class LocalIssuer:
    """An RSA signing key in ``state_dir`` (made on first use) standing in for the OIDC issuer."""

    def __init__(self, state_dir: Path, issuer: str) -> None:
        self.issuer = issuer
        self.path = path = state_dir / KEY_FILE
        if path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA private key")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            state_dir.mkdir(parents=True, exist_ok=True)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        self._key = key
        self.public_jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.kid = jwt.PyJWK(self.public_jwk).key_id or _thumbprint(self.public_jwk)
        self.public_jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def mint(self, subject: str, audience: str | None, ttl: int = DEFAULT_TTL, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "sub": subject, "iat": now, "exp": now + ttl, **claims}
        if audience:
            payload["aud"] = audience
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        """The token's claims, or Unauthorized with API Gateway's reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the token is not a valid JWT") from None
        if header.get("alg") != ALGORITHM or header.get("kid") != self.kid:
            raise Unauthorized("the token's signing key is not in the issuer's JWKS")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token does not have a valid issuer") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet") from None
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the token is not valid ({error})") from None
        given = claims.get("aud", claims.get("client_id"))
        given_list = given if isinstance(given, list) else [given]
        if not any(isinstance(item, str) and item in audiences for item in given_list):
            raise Unauthorized("the token does not have a valid audience")
        return claims


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    import base64
    import hashlib

    members = json.dumps({key: jwk[key] for key in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).decode().rstrip("=")


def main(argv: list[str] | None = None) -> int:
    """Print a bearer token for the local HTTP API (issuer and audience from CORRELATOR_PARAM_*)."""
    from local.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m local.jwt_issuer", description=main.__doc__)
    parser.add_argument("--sub", required=True, help="the client's identity: becomes the events' subject")
    parser.add_argument("--aud", help="audience (default: the first of CORRELATOR_PARAM_HttpApiJwtAudience)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="seconds until it expires (default 3600)")
    args = parser.parse_args(argv)
    issuer = os.environ.get(ISSUER_VARIABLE, "")
    if not issuer:
        print("set CORRELATOR_PARAM_HttpApiJwtIssuer (as for make run) first", file=sys.stderr)
        return 2
    audiences = [item.strip() for item in os.environ.get(AUDIENCE_VARIABLE, "").split(",")]
    settings = Settings.from_environ(os.environ)
    token = LocalIssuer(settings.state_dir, issuer).mint(args.sub, args.aud or audiences[0], args.ttl)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
