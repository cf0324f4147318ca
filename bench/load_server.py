"""Load test of ``keymgmt serve``: many concurrent mutual-TLS clients on loopback.

``python bench/load_server.py [--clients 50] [--seconds 5] [--max-requests 50000]
[--kmip-python /path/to/venv/bin/python] [--json FILE]``

What it does, all on 127.0.0.1 and bounded in time and count:

1. makes a throwaway SQLite store whose PKI issues one client certificate
   per client (``bench-00`` ...) and a server certificate;
2. starts ``keymgmt serve --ca issuing`` as a child process (log level
   ``warning``: the per-request info line is off, as in production use);
3. opens one keep-alive TLS connection per client (mutual TLS, its own
   certificate) and runs three phases, each until ``--seconds`` pass or
   ``--max-requests`` were sent: **create** a key, **get** a key's
   description, **encrypt** 64 bytes;
4. checks nothing was lost: every key the service said it created is in the
   store, and a sample of ciphertexts decrypts (in-process, after the
   server stopped) to what was sent;
5. with ``--kmip-python``, does the same three operations against PyKMIP's
   server (``KmipServer``, mutual TLS, its SQLite database) with the same
   number of client connections (``bench/_kmip_load.py`` runs under that
   interpreter), and prints the throughput ratios. Both servers run for
   the whole test and each operation runs on keymgmt and then at once on
   PyKMIP (create, create, get, get, encrypt, encrypt), so the two sides
   of a ratio meet the same load from the rest of the machine.

The load generator is a plain asyncio HTTP/1.1 client on ``ssl`` streams so
that its own cost stays small next to the server's (the machine has two
cores, shared by server and clients). Handshakes happen before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.keyring import KeyFile

HERE = Path(__file__).resolve().parent
_PEM = serialization.Encoding.PEM


@attrs.frozen
class Setup:
    """The files a run needs."""

    directory: Path
    store: Path
    key_file: Path
    trust: Path
    policy: Path
    certs: list[tuple[Path, Path]]
    server_cert: tuple[Path, Path]


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def prepare(directory: Path, clients: int) -> Setup:
    """A store with a PKI, one client certificate per client, a policy allowing bench-*."""
    key_file = directory / "master.key"
    KeyFile.generate(key_file)
    store = directory / "store.db"
    certs = []
    with KeyManager.open(store, key_file=key_file, create=True) as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")
        km.keys.create("bench-enc")
        for index in range(clients):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = issuing.issue(
                public_key=key.public_key(), subject=f"bench-{index:02d}", profile="tls-client"
            )
            paths = (directory / f"bench-{index:02d}.pem", directory / f"bench-{index:02d}.key")
            paths[0].write_bytes(cert.public_bytes(_PEM) + issuing.certificate.public_bytes(_PEM))
            _write_key(paths[1], key)
            certs.append(paths)
        key = ec.generate_private_key(ec.SECP256R1())
        server = issuing.issue(
            public_key=key.public_key(),
            subject="kmip-server",
            names=["127.0.0.1"],
            profile="tls-server",
        )
        server_paths = (directory / "kmip-server.pem", directory / "kmip-server.key")
        server_paths[0].write_bytes(
            server.public_bytes(_PEM) + issuing.certificate.public_bytes(_PEM)
        )
        _write_key(server_paths[1], key)
        trust = directory / "root.pem"
        trust.write_bytes(root.certificate.public_bytes(_PEM))
        (directory / "chain.pem").write_bytes(
            issuing.certificate.public_bytes(_PEM) + root.certificate.public_bytes(_PEM)
        )
    policy = directory / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "principals": ["bench-*"],
                        "operations": ["encrypt", "decrypt", "create-key", "read-key"],
                        "keys": ["bench-*"],
                    }
                ],
                "rate_limit": {"rate": 1e6, "burst": 1000000},
            }
        )
    )
    return Setup(directory, store, key_file, trust, policy, certs, server_paths)


@contextlib.contextmanager
def keymgmt_server(setup: Setup, workers: int = 1) -> Iterator[tuple[str, int, int]]:
    """``keymgmt serve --ca issuing`` on a free loopback port, stopped afterwards."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from keymgmt.cli import main; sys.exit(main())",
            "--store",
            str(setup.store),
            "--key-file",
            str(setup.key_file),
            "serve",
            "--port",
            "0",
            "--ca",
            "issuing",
            "--policy",
            str(setup.policy),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=(setup.directory / "server.log").open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"https://([\d.]+):(\d+)", line)
        if not found:
            raise RuntimeError(
                "keymgmt serve did not start: " + (setup.directory / "server.log").read_text()
            )
        yield found.group(1), int(found.group(2)), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


class Connection:
    """One keep-alive HTTP/1.1 connection over mutual TLS."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.serial = 0  # keys this connection has asked to create

    @classmethod
    async def open(cls, host: str, port: int, context: ssl.SSLContext) -> Connection:
        """Connect and finish the TLS handshake."""
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host
        )
        return cls(reader, writer)

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; the status and the body."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()


@attrs.define
class Phase:
    """What one phase measured."""

    system: str
    op: str
    clients: int
    latencies: list[float]
    errors: Counter[str]
    elapsed: float
    samples: list[Any] = attrs.field(factory=list)
    server_cpu: float = float("nan")

    def merge(self, part: Phase) -> None:
        """Add a slice of the same operation."""
        self.latencies.extend(part.latencies)
        self.errors.update(part.errors)
        self.elapsed += part.elapsed
        self.samples.extend(part.samples[: max(0, 500 - len(self.samples))])

    def row(self) -> dict[str, Any]:
        """The summary line."""
        lat = sorted(self.latencies)
        count = len(lat)

        def pct(p: float) -> float:
            return lat[min(count - 1, int(p * count))] * 1000 if count else float("nan")

        return {
            "system": self.system,
            "op": self.op,
            "clients": self.clients,
            "ok": count,
            "errors": sum(self.errors.values()),
            "seconds": round(self.elapsed, 2),
            "ops_per_s": round(count / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(statistics.median(lat) * 1000, 2) if count else float("nan"),
            "p99_ms": round(pct(0.99), 2),
            "max_ms": round(lat[-1] * 1000, 2) if count else float("nan"),
            "cpu_us_per_op": round(self.server_cpu / count * 1e6) if count else float("nan"),
        }


async def keymgmt_phase(
    host: str,
    port: int,
    connections: list[Connection],
    op: str,
    seconds: float,
    max_requests: int,
    created: list[str],
) -> Phase:
    """Run one operation on every connection until the deadline or the count."""
    phase = Phase("keymgmt", op, len(connections), [], Counter(), 0.0)
    made = set(created)
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(index: int, conn: Connection) -> None:
        nonlocal sent
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            if op == "create":
                conn.serial += 1  # across slices: every name is new
                name = f"bench-c{index:02d}-{conn.serial}"
                method, path, body, expected = (
                    "POST",
                    "/v1/transit/keys",
                    json.dumps({"name": name}).encode(),
                    201,
                )
            elif op == "get":
                # Like the PyKMIP side: each connection reads its own key.
                name = f"bench-c{index:02d}-1" if f"bench-c{index:02d}-1" in made else "bench-enc"
                method, path, body, expected = "GET", f"/v1/transit/keys/{name}", b"", 200
            else:
                plaintext = os.urandom(64)
                method, path, expected = "POST", "/v1/transit/keys/bench-enc/encrypt", 200
                body = json.dumps({"plaintext": base64.b64encode(plaintext).decode()}).encode()
            begun = time.perf_counter()
            status, answer = await conn.call(method, path, body)
            took = time.perf_counter() - begun
            if status != expected:
                phase.errors[str(status)] += 1
                continue
            phase.latencies.append(took)
            if op == "create":
                created.append(name)
            elif op == "encrypt" and len(phase.samples) < 500:
                phase.samples.append(
                    (plaintext, base64.b64decode(json.loads(answer)["ciphertext"]))
                )

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(connections)))
    phase.elapsed = time.perf_counter() - start
    return phase


async def open_connections(setup: Setup, host: str, port: int, clients: int) -> list[Connection]:
    """One mutual-TLS keep-alive connection per client, handshakes done."""
    contexts = []
    for cert, key in setup.certs:
        context = ssl.create_default_context(cafile=setup.trust)
        context.load_cert_chain(cert, key)
        contexts.append(context)
    return [await Connection.open(host, port, contexts[i % len(contexts)]) for i in range(clients)]


def verify_nothing_lost(setup: Setup, phases: list[Phase]) -> dict[str, int]:
    """Every created key is in the store; sampled ciphertexts decrypt to what was sent."""
    created = set(phases[0].samples)
    with KeyManager.open(setup.store, key_file=setup.key_file, create=False) as km:
        names = {k.name for k in km.keys.list()}
        missing = len(created - names)
        wrong = sum(1 for pt, ct in phases[2].samples if km.decrypt(ct) != pt)
    return {
        "created": len(created),
        "missing": missing,
        "decrypt_checked": len(phases[2].samples),
        "decrypt_wrong": wrong,
    }


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux ``/proc``), or NaN."""
    try:
        fields = _stat(pid)
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except (OSError, IndexError):
            continue
        if child[1] == str(pid):  # the parent pid field
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _loop_factory() -> Any:
    """uvloop's loop when installed (the generator's own cost stays small), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pykmip_server(setup: Setup, args: argparse.Namespace) -> Iterator[tuple[int, int]]:
    """PyKMIP's ``KmipServer`` (under ``--kmip-python``) on a free port, stopped afterwards."""
    port = _free_port()
    server = subprocess.Popen(
        [
            args.kmip_python,
            str(HERE / "_kmip_load.py"),
            "server",
            "--port",
            str(port),
            "--ca",
            str(setup.directory / "chain.pem"),
            "--cert",
            str(setup.server_cert[0]),
            "--key",
            str(setup.server_cert[1]),
            "--dir",
            str(setup.directory),
        ],
        stdout=subprocess.PIPE,
        stderr=(setup.directory / "kmip-stderr.log").open("w"),
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError((setup.directory / "kmip-stderr.log").read_text())
        time.sleep(0.5)  # the listening socket opens right after "ready"
        yield port, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class PyKmipClients:
    """PyKMIP's client threads in one child process (``_kmip_load.py session``).

    The connections and each connection's key are made once; then every
    :meth:`run` is one timed slice of one operation.
    """

    def __init__(self, setup: Setup, port: int, args: argparse.Namespace) -> None:
        self.process = subprocess.Popen(
            [
                args.kmip_python,
                str(HERE / "_kmip_load.py"),
                "session",
                "--port",
                str(port),
                "--ca",
                str(setup.directory / "chain.pem"),
                "--certs",
                *[str(c) for c, _ in setup.certs],
                "--keys",
                *[str(k) for _, k in setup.certs],
                "--threads",
                str(args.clients),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(setup.directory / "kmip-clients.log").open("w"),
            text=True,
        )
        self.log = setup.directory / "kmip-clients.log"
        if self._line() != "ready":
            raise RuntimeError(self.log.read_text()[-2000:])

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def run(self, op: str, seconds: float, max_requests: int) -> dict[str, Any]:
        """One slice: every connection does ``op`` until the deadline or the count."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{op} {seconds} {max_requests}\n")
        self.process.stdin.flush()
        line = self._line()
        if not line:
            raise RuntimeError(self.log.read_text()[-2000:])
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        """End the session."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_side_by_side(
    setup: Setup, args: argparse.Namespace
) -> tuple[list[Phase], list[Phase], str | None, float]:
    """Each operation on keymgmt and on PyKMIP (when given), in alternating slices.

    Both servers and all client connections live for the whole test. Each
    operation's ``--seconds`` are cut into ``--slices`` slices per system,
    run alternately (keymgmt, PyKMIP, keymgmt, ...), so both sides of a
    ratio meet the same load from the rest of the machine (on a shared
    machine that load moves within seconds). Returns keymgmt's phases,
    PyKMIP's, PyKMIP's failure if any, and the load generator's CPU
    seconds for keymgmt.
    """
    ours: list[Phase] = []
    theirs: list[Phase] = []
    kmip_error = None
    client_cpu = 0.0
    slices = max(1, args.slices)
    with contextlib.ExitStack() as stack:
        host, port, pid = stack.enter_context(keymgmt_server(setup, args.workers))
        kmip: tuple[int, int] | None = None
        kmip_clients: PyKmipClients | None = None
        if args.kmip_python:
            try:
                kmip = stack.enter_context(pykmip_server(setup, args))
                kmip_clients = PyKmipClients(setup, kmip[0], args)
                stack.callback(kmip_clients.close)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                kmip_error = f"{type(exc).__name__}: {str(exc)[-500:]}"
        runner = stack.enter_context(asyncio.Runner(loop_factory=_loop_factory()))
        connections = runner.run(open_connections(setup, host, port, args.clients))
        created: list[str] = []
        for op in ("create", "get", "encrypt"):
            phase = Phase("keymgmt", op, args.clients, [], Counter(), 0.0, server_cpu=0.0)
            other = Phase("pykmip", op, args.clients, [], Counter(), 0.0, server_cpu=0.0)
            for _ in range(slices):
                budget = args.max_requests - len(phase.latencies) - sum(phase.errors.values())
                if budget > 0:
                    started = time.process_time()
                    before = cpu_seconds(pid)
                    part = runner.run(
                        keymgmt_phase(
                            host, port, connections, op, args.seconds / slices, budget, created
                        )
                    )
                    phase.server_cpu += cpu_seconds(pid) - before
                    client_cpu += time.process_time() - started
                    phase.merge(part)
                budget = args.max_requests - len(other.latencies) - sum(other.errors.values())
                if kmip_clients is not None and kmip is not None and kmip_error is None:
                    if budget <= 0:
                        continue
                    before = cpu_seconds(kmip[1])
                    try:
                        result = kmip_clients.run(op, args.seconds / slices, budget)
                    except (RuntimeError, OSError, ValueError) as exc:
                        kmip_error = f"{type(exc).__name__}: {str(exc)[-500:]}"
                        continue
                    other.server_cpu += cpu_seconds(kmip[1]) - before
                    other.latencies.extend(result["latencies"])
                    other.errors.update(result["errors"])
                    other.elapsed += result["elapsed"]
            ours.append(phase)
            if other.elapsed:
                theirs.append(other)
        for conn in connections:
            conn.close()
        ours[0].samples = created
    return ours, theirs, kmip_error, client_cpu


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print the table; exit 1 on any error or lost data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--max-requests", type=int, default=50000, help="per phase")
    parser.add_argument("--workers", type=int, default=1, help="keymgmt serve --workers")
    parser.add_argument(
        "--slices", type=int, default=5, help="alternating slices per operation and system"
    )
    parser.add_argument("--kmip-python", help="an interpreter with pykmip installed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keymgmt-load-") as directory:
        setup = prepare(Path(directory), min(args.clients, 50))
        phases, kmip, kmip_error, client_cpu = run_side_by_side(setup, args)
        lost = verify_nothing_lost(setup, phases)
    rows = [p.row() for p in phases + kmip]
    columns = [
        "system",
        "op",
        "clients",
        "ok",
        "errors",
        "seconds",
        "ops_per_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "cpu_us_per_op",
    ]
    print("  ".join(f"{c:>9}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]!s:>9}" for c in columns))
    total = sum(len(p.latencies) for p in phases)
    print(
        f"load generator CPU: {client_cpu / max(total, 1) * 1e6:.0f} us per keymgmt request; "
        f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"nothing lost: {lost}")
    ratios = {}
    for ours, theirs in zip(phases, kmip, strict=False):
        if theirs.latencies:
            ratios[ours.op] = round(ours.row()["ops_per_s"] / theirs.row()["ops_per_s"], 1)
    if ratios:
        print("throughput keymgmt / PyKMIP: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()))
        print("target >= 10x: " + ("PASS" if all(v >= 10 for v in ratios.values()) else "MISS"))
    if kmip_error:
        print(f"PyKMIP run failed: {kmip_error}")
    encrypt = phases[2].row()
    print(
        f"encrypt p99 with {args.clients} clients: {encrypt['p99_ms']} ms "
        f"(target < 50 ms: {'PASS' if encrypt['p99_ms'] < 50 else 'MISS'})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"rows": rows, "lost": lost, "ratios": ratios, "kmip_error": kmip_error}, indent=2
            )
        )
    failed = (
        any(r["errors"] for r in rows if r["system"] == "keymgmt")
        or lost["missing"]
        or lost["decrypt_wrong"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
