"""Signing keys for the publishing side, kept in a directory.

Each key ``NAME`` is ``NAME.pub.json`` (the public key in TUF's key format) plus how to
reach the private half: ``NAME.pem`` (an Ed25519 PKCS#8 file, mode 0600, the default) or
``NAME.uri`` holding a securesystemslib private-key URI, e.g. ``awskms:arn:aws:kms:...``
or ``gcpkms:projects/.../cryptoKeyVersions/1``, so a role key can live in a cloud KMS
without changing anything else.

Names: ``root-1`` .. ``root-N``, ``targets``, ``snapshot``, ``timestamp``, and
``tenant-<id>`` in a tenant's own directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from securesystemslib.signer import CryptoSigner, Signer, SSlibKey


class KeyFileError(Exception):
    """A key file is missing or unusable; the message names the file, never key bytes."""


class Keyring:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    def _pub_path(self, name: str) -> Path:
        return self.dir / f"{name}.pub.json"

    def has(self, name: str) -> bool:
        return self._pub_path(name).is_file()

    def generate(self, name: str) -> SSlibKey:
        if self.has(name):
            raise KeyFileError(f"{self._pub_path(name)}: already exists; refusing to overwrite")
        self.dir.mkdir(parents=True, exist_ok=True)
        signer = CryptoSigner.generate_ed25519()
        pem = self.dir / f"{name}.pem"
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signer.private_bytes)
        key = signer.public_key
        self._pub_path(name).write_text(json.dumps(_key_dict(key), indent=1, sort_keys=True))
        return key

    def public(self, name: str) -> SSlibKey:
        return load_public(self._pub_path(name))

    def signer(self, name: str) -> Signer:
        key = self.public(name)
        uri_file = self.dir / f"{name}.uri"
        pem = self.dir / f"{name}.pem"
        if uri_file.is_file():
            uri = uri_file.read_text().strip()
        elif pem.is_file():
            uri = f"file2:{pem}"
        else:
            raise KeyFileError(f"{self.dir}: no private key for {name} ({name}.pem or {name}.uri)")
        try:
            return Signer.from_priv_key_uri(uri, key)
        except Exception as e:
            # The URI names a file or a KMS key, not secret material, so it may be shown.
            raise KeyFileError(f"{name}: cannot load signer {uri}: {type(e).__name__}") from None


def _key_dict(key: SSlibKey) -> dict[str, object]:
    return {"keyid": key.keyid, **key.to_dict()}


def load_public(path: Path) -> SSlibKey:
    try:
        raw = json.loads(Path(path).read_text())
        keyid = raw.pop("keyid")
        key = SSlibKey.from_dict(keyid, raw)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such public key file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise KeyFileError(f"{path}: not a public key file ({type(e).__name__}: {e})") from None
    return key
