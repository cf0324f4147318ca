"""PyKMIP's side of ``bench/load_server.py``; run by an interpreter that has ``pykmip``.

PyKMIP is not a keymgmt dependency: ``load_server.py --kmip-python PATH``
runs this file with that interpreter, twice: ``server`` (a PyKMIP
``KmipServer`` with mutual TLS and a SQLite database, until killed) and
``session`` (N threads, each with its own ``ProxyKmipClient`` connection
and key, opened once; then for each stdin line ``OP SECONDS MAX`` every
thread does the operation until the deadline or the count, and one JSON
line reports it). ``clients`` runs a single such slice (``--op``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings


def _server(args: argparse.Namespace) -> None:
    from kmip.services.server import KmipServer

    warnings.simplefilter("ignore")
    server = KmipServer(
        hostname="127.0.0.1",
        port=args.port,
        certificate_path=args.cert,
        key_path=args.key,
        ca_path=args.ca,
        auth_suite="TLS1.2",
        config_path=None,
        log_path=os.path.join(args.dir, "kmip-server.log"),
        policy_path=args.dir,
        enable_tls_client_auth=False,
        logging_level="WARNING",
        database_path=os.path.join(args.dir, "kmip.db"),
    )
    with server:
        print("ready", flush=True)
        server.serve()


def _client(args: argparse.Namespace, index: int):  # type: ignore[no-untyped-def]
    from kmip.pie.client import ProxyKmipClient

    client = ProxyKmipClient(
        hostname="127.0.0.1",
        port=args.port,
        cert=args.certs[index % len(args.certs)],
        key=args.keys[index % len(args.keys)],
        ca=args.ca,
        config_file=os.devnull,
    )
    client.open()
    return client


class _Clients:
    """N client connections, each with its own key, ready to run timed slices."""

    def __init__(self, args: argparse.Namespace) -> None:
        from kmip.core import enums

        self.enums = enums
        self.params = {
            "block_cipher_mode": enums.BlockCipherMode.CBC,
            "padding_method": enums.PaddingMethod.PKCS5,
            "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
        }
        self.clients = [_client(args, i) for i in range(args.threads)]
        # PyKMIP lets only an object's owner (the creating certificate's
        # identity) use it: each connection gets and encrypts under its own key.
        self.keys = {}
        for client in self.clients:
            key_id = client.create(enums.CryptographicAlgorithm.AES, 256)
            client.activate(key_id)
            self.keys[id(client)] = key_id
        self.payload = os.urandom(64)

    def run(self, op: str, seconds: float, max_requests: int) -> dict:  # type: ignore[type-arg]
        """Every connection does ``op`` until the deadline or the count; the results."""
        enums = self.enums
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        count = [0]
        start = time.perf_counter()
        deadline = start + seconds

        def work(client) -> None:  # type: ignore[no-untyped-def]
            key_id = self.keys[id(client)]
            mine: list[float] = []
            while time.perf_counter() < deadline:
                with lock:
                    if count[0] >= max_requests:
                        break
                    count[0] += 1
                begun = time.perf_counter()
                try:
                    if op == "create":
                        client.create(enums.CryptographicAlgorithm.AES, 256)
                    elif op == "get":
                        client.get(key_id)
                    else:
                        client.encrypt(
                            self.payload, uid=key_id, cryptographic_parameters=self.params
                        )
                except Exception as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                mine.append(time.perf_counter() - begun)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=work, args=(c,)) for c in self.clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        return {"op": op, "latencies": latencies, "errors": errors, "elapsed": elapsed}

    def close(self) -> None:
        """Close every connection."""
        for client in self.clients:
            client.close()


def _clients(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore")
    clients = _Clients(args)
    try:
        json.dump(clients.run(args.op, args.seconds, args.max_requests), sys.stdout)
    finally:
        clients.close()


def _session(args: argparse.Namespace) -> None:
    """Connect once, then run one slice per stdin line ``OP SECONDS MAX``; a JSON line each."""
    warnings.simplefilter("ignore")
    clients = _Clients(args)
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            op, seconds, max_requests = line.split()
            print(json.dumps(clients.run(op, float(seconds), int(max_requests))), flush=True)
    finally:
        clients.close()


def main() -> None:
    """Dispatch ``server`` or ``clients``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["server", "clients", "session"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--dir")
    parser.add_argument("--certs", nargs="*", default=[])
    parser.add_argument("--keys", nargs="*", default=[])
    parser.add_argument("--op", choices=["create", "get", "encrypt"])
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=10000)
    args = parser.parse_args()
    if args.mode == "server":
        _server(args)
    elif args.mode == "session":
        _session(args)
    else:
        _clients(args)


if __name__ == "__main__":
    main()
