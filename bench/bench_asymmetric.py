"""Asymmetric keys: sign/verify and HPKE seal/open beside the raw primitives.

Two layers are measured. ``layer`` cases run keymgmt's per-algorithm code
(:mod:`keymgmt.keys._asymmetric` and the store-less :mod:`keymgmt.public`)
including the keymgmt envelope (header build/parse, identity checks). The
``façade`` cases run ``km.sign`` / ``km.verify`` / ``km.encrypt`` /
``km.decrypt`` on an in-memory store with a cached key version, when the
façade has them. Raw baselines call ``cryptography`` directly on a ready key
object with the same parameters. Targets (issue 4): 1.3x for Ed25519, P-256
and HPKE; 1.1x for RSA.
"""

from __future__ import annotations

from collections.abc import Callable

from _harness import Case
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.keys import _asymmetric as asym
from keymgmt.keys._format import PayloadType, encode_context, parse_header, prefix
from keymgmt.public import PublicKey

MESSAGE = b"m" * 256
CONTEXT = {"purpose": "bench"}
KEY_ID = bytes.fromhex("0011223344556677")
TARGETS = {
    Algorithm.ED25519: 1.3,
    Algorithm.ECDSA_P256: 1.3,
    Algorithm.RSA_2048: 1.1,
    Algorithm.ML_DSA_65: 1.3,
    Algorithm.X25519: 1.3,
    Algorithm.ML_KEM_768_X25519: 1.3,
}


def _raw_signer(algorithm: Algorithm, private: object) -> Callable[[], object]:
    key: object = private
    if algorithm is Algorithm.ECDSA_P256:
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda: key.sign(MESSAGE, ecdsa)  # type: ignore[attr-defined]
    if algorithm is Algorithm.RSA_2048:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        sha = hashes.SHA256()
        return lambda: key.sign(MESSAGE, pss, sha)  # type: ignore[attr-defined]
    return lambda: key.sign(MESSAGE)  # type: ignore[attr-defined]


def _raw_verifier(algorithm: Algorithm, public: object, signature: bytes) -> Callable[[], object]:
    key: object = public
    if algorithm is Algorithm.ECDSA_P256:
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda: key.verify(signature, MESSAGE, ecdsa)  # type: ignore[attr-defined]
    if algorithm is Algorithm.RSA_2048:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        sha = hashes.SHA256()
        return lambda: key.verify(signature, MESSAGE, pss, sha)  # type: ignore[attr-defined]
    return lambda: key.verify(signature, MESSAGE)  # type: ignore[attr-defined]


def _signing_cases(km: KeyManager | None) -> list[Case]:
    handler = asym.AsymmetricHandler()
    cases: list[Case] = []
    for algorithm in (
        Algorithm.ED25519,
        Algorithm.ECDSA_P256,
        Algorithm.RSA_2048,
        Algorithm.ML_DSA_65,
    ):
        pair = handler.load(algorithm, asym.generate(algorithm))
        head = prefix(PayloadType.SIGNATURE, algorithm, KEY_ID, "bench", 1)
        public = PublicKey(
            algorithm=algorithm,
            key=pair.public,
            key_name="bench",
            version=1,
            key_id=KEY_ID.hex(),
            usage=KeyUsage.SIGN_VERIFY,
        )
        envelope = head + handler.sign(algorithm, pair, MESSAGE)
        raw_sig = asym.Signature.decode(envelope).raw
        target = TARGETS[algorithm]

        def layer_sign(
            a: Algorithm = algorithm, p: asym.LoadedKeyPair = pair, h: bytes = head
        ) -> bytes:
            return h + handler.sign(a, p, MESSAGE)

        cases.append(
            Case(
                "asymmetric",
                f"layer sign {algorithm.value} (envelope)",
                layer_sign,
                _raw_signer(algorithm, pair.private),
                target=target,
            )
        )
        cases.append(
            Case(
                "asymmetric",
                f"public verify {algorithm.value} (envelope)",
                lambda k=public, e=envelope: k.verify(MESSAGE, e),
                _raw_verifier(algorithm, pair.public, raw_sig),
                target=target,
            )
        )
        if km is not None and hasattr(km, "sign"):
            name = f"bench-{algorithm.value}"
            km.keys.create(name, algorithm)
            signed = km.sign(name, MESSAGE)
            km.verify(name, MESSAGE, signed)
            facade_key = km.keys.public_key(name) if hasattr(km.keys, "public_key") else None
            del facade_key
            loaded = km.keys._load(name, None).loaded  # the cached version: same key as raw
            facade_raw = asym.Signature.decode(signed).raw
            cases.append(
                Case(
                    "asymmetric",
                    f"façade sign {algorithm.value}",
                    lambda n=name: km.sign(n, MESSAGE),
                    _raw_signer(algorithm, loaded.private),
                    target=target,
                )
            )
            cases.append(
                Case(
                    "asymmetric",
                    f"façade verify {algorithm.value}",
                    lambda n=name, s=signed: km.verify(n, MESSAGE, s),
                    _raw_verifier(algorithm, loaded.public, facade_raw),
                    target=target,
                )
            )
    return cases


def _hpke_cases(km: KeyManager | None) -> list[Case]:
    handler = asym.AsymmetricHandler()
    cases: list[Case] = []
    for algorithm in (Algorithm.X25519, Algorithm.ML_KEM_768_X25519):
        pair = handler.load(algorithm, asym.generate(algorithm))
        suite = asym.hpke_suite(algorithm)
        public = PublicKey(
            algorithm=algorithm,
            key=pair.public,
            key_name="bench",
            version=1,
            key_id=KEY_ID.hex(),
            usage=KeyUsage.ENCRYPT_DECRYPT,
        )
        ciphertext = public.encrypt(MESSAGE, context=CONTEXT)
        header = parse_header(ciphertext)
        aad = ciphertext[: header.prefix_length] + encode_context(CONTEXT)
        body = ciphertext[header.prefix_length :]
        raw_pub = public.cryptography_key
        raw_priv = (
            pair.private.hpke_key
            if isinstance(pair.private, asym.XWingPrivateKey)
            else pair.private
        )
        target = TARGETS[algorithm]

        def layer_open(
            a: Algorithm = algorithm, p: asym.LoadedKeyPair = pair, c: bytes = ciphertext
        ) -> bytes:
            h = parse_header(c)
            return handler.decrypt(
                a, p, c[h.prefix_length :], c[: h.prefix_length] + encode_context(CONTEXT)
            )

        cases.append(
            Case(
                "asymmetric",
                f"public HPKE seal {algorithm.value} 256 B",
                lambda k=public: k.encrypt(MESSAGE, context=CONTEXT),
                lambda s=suite, k=raw_pub, i=aad: s.encrypt(MESSAGE, k, info=i),
                target=target,
            )
        )
        cases.append(
            Case(
                "asymmetric",
                f"layer HPKE open {algorithm.value} 256 B",
                layer_open,
                lambda s=suite, k=raw_priv, b=body, i=aad: s.decrypt(b, k, info=i),
                target=target,
            )
        )
        if km is not None:
            name = f"bench-hpke-{algorithm.value}"
            km.keys.create(name, algorithm, usage=KeyUsage.ENCRYPT_DECRYPT)
            sealed = km.encrypt(name, MESSAGE, CONTEXT)
            km.decrypt(sealed, CONTEXT)
            cases.append(
                Case(
                    "asymmetric",
                    f"façade HPKE seal {algorithm.value} 256 B",
                    lambda n=name: km.encrypt(n, MESSAGE, CONTEXT),
                    lambda s=suite, k=raw_pub, i=aad: s.encrypt(MESSAGE, k, info=i),
                    target=target,
                )
            )
            cases.append(
                Case(
                    "asymmetric",
                    f"façade HPKE open {algorithm.value} 256 B",
                    lambda c=sealed: km.decrypt(c, CONTEXT),
                    lambda s=suite, k=raw_priv, b=body, i=aad: s.decrypt(b, k, info=i),
                    target=target,
                )
            )
    return cases


def cases() -> list[Case]:
    """Sign/verify and HPKE seal/open, layer and façade, beside raw cryptography."""
    km = KeyManager.in_memory(consistency_interval=1.0)
    return _signing_cases(km) + _hpke_cases(km)
