"""A store reopened in a new process decrypts everything encrypted before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.keyring import KdfProfile

PASSPHRASE = "correct horse battery staple"

_CHILD = """
import json, sys
from keymgmt import KeyManager
path, cases = sys.argv[1], json.loads(sys.stdin.read())
out = []
with KeyManager.open(path, passphrase=sys.argv[2], create=False) as km:
    for ciphertext, context, kind in cases:
        data = bytes.fromhex(ciphertext)
        if kind == "data-key":
            out.append(km.decrypt_data_key(data, context).reveal().hex())
        else:
            out.append(km.decrypt(data, context).hex())
print(json.dumps(out))
"""


def test_a_new_process_decrypts_what_this_one_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    cases: list[tuple[str, dict[str, str], str]] = []
    expected: list[str] = []
    with KeyManager.open(
        path, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        for algorithm in (
            Algorithm.AES_256_GCM,
            Algorithm.CHACHA20_POLY1305,
            Algorithm.AES_256_GCM_SIV,
            Algorithm.FERNET,
        ):
            name = algorithm.value
            km.keys.create(name, algorithm)
            context = {} if algorithm is Algorithm.FERNET else {"alg": name}
            for round_ in range(2):
                plaintext = f"{name} round {round_}".encode() * (1 + 5000 * round_)
                cases.append((bytes(km.encrypt(name, plaintext, context)).hex(), context, "msg"))
                expected.append(plaintext.hex())
                km.keys.rotate(name)
        data_key = km.generate_data_key("aes-256-gcm", {"file": "x"})
        cases.append((data_key.wrapped.hex(), {"file": "x"}, "data-key"))
        expected.append(data_key.plaintext.reveal().hex())
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), PASSPHRASE],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(result.stdout) == expected
