"""Where each part of an exhibit bundle lives: BagIt's names (RFC 8493 §2) and ours."""

from __future__ import annotations

import re
import unicodedata

FORMAT = "custody-bundle/1"
ALGORITHMS = ("sha256", "sha512")  # RFC 8493 §2.4: sha512 SHOULD; sha256 for sha256sum -c
BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
PAYLOAD_DIR = "data/"
EXHIBITS_CSV = "exhibits.csv"
CERTIFICATE = "certificate.pdf"
VERIFY_MD = "VERIFY.md"
BUNDLE_JSON = "custody/bundle.json"
LOG_VKEY = "custody/log.vkey"
ORGANISATION_KEY = "custody/organisation.pem"
SIGNATURE_SUFFIX = ".sig"  # the detached signature over a tag manifest, next to it


def manifest_name(algorithm: str) -> str:
    return f"manifest-{algorithm}.txt"


def tag_manifest_name(algorithm: str) -> str:
    return f"tagmanifest-{algorithm}.txt"


def signature_name(algorithm: str) -> str:
    return tag_manifest_name(algorithm) + SIGNATURE_SUFFIX


def unlisted_tag_files() -> frozenset[str]:
    """The tag files no tag manifest lists: the tag manifests themselves (RFC 8493 §2.2.1:
    a tag manifest MUST NOT list tag manifests) and the signatures over them."""
    names = set()
    for algorithm in ALGORITHMS:
        names.add(tag_manifest_name(algorithm))
        names.add(signature_name(algorithm))
    return frozenset(names)


def checkpoint_dir(size: int) -> str:
    return f"custody/checkpoints/{size}/"


def checkpoint_path(size: int) -> str:
    """The signed checkpoint note of `size`, verbatim as the log published it."""
    return f"{checkpoint_dir(size)}checkpoint"


def token_path(size: int, slot: int) -> str:
    """One TSA's RFC 3161 TimeStampResp over checkpoint `size`, as the log stored it."""
    return f"{checkpoint_dir(size)}tsa{slot}.tsr"


def chain_path(size: int, slot: int) -> str:
    """That TSA's certificate chain (PEM, its certificate first), for `openssl ts -verify`."""
    return f"{checkpoint_dir(size)}tsa{slot}.pem"


def receipt_path(index: int) -> str:
    """The C2SP tlog-proof of log entry `index` (the entry in its extra line)."""
    return f"custody/entries/{index}.tlog-proof"


def exhibit_path(number: int, width: int) -> str:
    """The exhibit's record: what it is, its entries, and its collection's proofs."""
    return f"custody/exhibits/{number:0{width}d}.json"


def number_width(count: int) -> int:
    """Exhibit numbers are zero-padded to one width, so names sort in exhibit order."""
    return max(3, len(str(count)))


# Payload names must survive zip tools, Windows, sha256sum and BagIt's manifest syntax
# (RFC 8493 §2.1.3 would percent-encode CR, LF and %; we never produce them).
_UNSAFE = re.compile(r"[^\w.\- ()+,=@\[\]{}~!#$&\']", re.UNICODE)
MAX_NAME_CHARS = 120


def payload_name(number: int, width: int, filename: str | None, extension: str) -> str:
    """`data/<number>-<filename>`: the exhibit number first, the original name sanitised."""
    stem = unicodedata.normalize("NFC", filename or "")
    stem = _UNSAFE.sub("_", stem).strip(" .")
    if not stem:
        stem = f"exhibit{extension}"
    if len(stem) > MAX_NAME_CHARS:
        dot = stem.rfind(".")
        suffix = stem[dot:] if dot > 0 and len(stem) - dot <= 16 else ""
        stem = stem[: MAX_NAME_CHARS - len(suffix)] + suffix
    return f"{PAYLOAD_DIR}{number:0{width}d}-{stem}"


def shared_filename(filename: str | None, rendition: str | None = None) -> str | None:
    """A sharing copy's display name: the original's, marked as shared before its extension;
    a copy in another format (a rendition: `rendition` is its extension, e.g. ".png") takes
    that extension in place of the original's."""
    if not filename:
        return None
    dot = filename.rfind(".")
    stem, extension = (filename, "") if dot <= 0 else (filename[:dot], filename[dot:])
    return f"{stem}.shared{rendition if rendition is not None else extension}"
