"""RFC 3161 Time-Stamp Protocol, both sides: requests, a built-in TSA, and token verification.

Tokens are CMS SignedData (RFC 5652) over a TSTInfo, with the signing certificate named by
ESSCertIDv2 (RFC 5816); `openssl ts -verify` accepts what `issue_response` makes. Pure: bytes
in, values out; time is a parameter, and transport and key storage belong to the caller.

Verification checks certificates at the token's genTime, not at "now": a token issued while
the TSA certificate was valid keeps verifying after that certificate expires, which is what
lets a timestamp serve as evidence years later. Revocation (CRL, OCSP) is not checked here.

The modules: `protocol` (requests and responses), `identity` (the TSA's key and certificates),
`issuance` (the TSA's answers), `verify` with `signer` and `certificates` (token checks), and
`der` (the strict DER every parser checks first).
"""

from custody.tsp.certificates import ID_KP_TIME_STAMPING
from custody.tsp.identity import (
    TsaIdentity,
    certificates_pem,
    dump_tsa_key,
    generate_tsa,
    load_tsa,
)
from custody.tsp.issuance import issue_response, rejection_response
from custody.tsp.protocol import (
    DEFAULT_POLICY,
    HASH_ALGORITHMS,
    TimestampReply,
    TimestampRequest,
    make_request,
    new_nonce,
    parse_request,
    parse_response,
)
from custody.tsp.verify import VerifiedToken, verify_reply, verify_token

__all__ = [
    "DEFAULT_POLICY",
    "HASH_ALGORITHMS",
    "ID_KP_TIME_STAMPING",
    "TimestampReply",
    "TimestampRequest",
    "TsaIdentity",
    "VerifiedToken",
    "certificates_pem",
    "dump_tsa_key",
    "generate_tsa",
    "issue_response",
    "load_tsa",
    "make_request",
    "new_nonce",
    "parse_request",
    "parse_response",
    "rejection_response",
    "verify_reply",
    "verify_token",
]
