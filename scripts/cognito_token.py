"""Signs a token as moto's Cognito signs its own: with the key moto ships (the one its
`/<pool>/.well-known/jwks.json` serves), so the sync API's checks see a real pool signature.

    .venv/moto/bin/python scripts/cognito_token.py '{"iss": "...", "sub": "...", ...}'

Prints the token. For tests of what a pool can issue but a test cannot wait for or ask for: an
expired token, another app client's, a token of another pool. Never for anything deployed:
moto's key is public.
"""
import gzip
import json
import sys
from pathlib import Path

import moto
from joserfc import jwt
from joserfc.jwk import RSAKey


def main():
    claims = json.loads(sys.argv[1])
    resources = Path(moto.__file__).parent / "cognitoidp" / "resources"
    path = resources / "jwks-private.json"
    raw = path.read_bytes() if path.exists() else gzip.decompress((resources / "jwks-private.json.gz").read_bytes())
    key = RSAKey.import_key(json.loads(raw))
    # The kid moto's own tokens carry and its JWKS lists.
    print(jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key))


if __name__ == "__main__":
    main()
