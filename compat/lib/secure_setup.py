"""What the secured cluster target needs before its brokers start: a CA and a broker certificate
(openssl, PEM), SCRAM credentials written into ZooKeeper the way upstream's
`kafka-configs.sh --zookeeper ... --alter --add-config 'SCRAM-SHA-256=[password=...]'` writes
them, and the server.properties lines of upstream's ZooKeeper-mode security settings.

The users (see compat/lib/security.py for what the scenarios do with them):
  admin / admin-secret   super user; also the inter-broker principal (SASL_SSL, PLAIN)
  alice / alice-secret   an ordinary user with no ACLs
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess

USERS = {"admin": "admin-secret", "alice": "alice-secret"}
ADMIN = "admin"
USER = "alice"
SCRAM_ITERATIONS = 4096


def make_certs(d):
    """A CA and one broker certificate for 127.0.0.1/localhost (server and client use), PEM.
    Returns (ca_pem, keystore_pem) where the keystore file holds the PKCS#8 key and the chain."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca_pem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = os.path.join(d, "broker.key"), os.path.join(d, "broker.csr"), os.path.join(d, "broker.crt")
    keystore = os.path.join(d, "broker-keystore.pem")
    if os.path.exists(keystore) and os.path.exists(ca_pem):
        return ca_pem, keystore
    ext = os.path.join(d, "broker.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_pem, "-days", "3650",
        "-subj", "/CN=Samsa compat CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost/O=Samsa compat")
    run("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "3650",
        "-extfile", ext)
    with open(keystore, "w") as out:
        out.write(open(key).read())
        out.write(open(crt).read())
    return ca_pem, keystore


def scram_entry(password, algorithm, iterations=SCRAM_ITERATIONS, salt=None):
    """One SCRAM credential as upstream's ScramCredentialUtils.credentialToString stores it."""
    digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[algorithm]
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored_key = hashlib.new(digest, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"salt={b64(salt)},stored_key={b64(stored_key)},server_key={b64(server_key)},iterations={iterations}"


def write_scram_users(zk_addr, users=USERS):
    """/config/users/<user> with SCRAM-SHA-256 and -512 credentials and a /config/changes
    notification each, as `kafka-configs.sh --zookeeper` does."""
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=zk_addr, timeout=10)
    zk.start(timeout=15)
    try:
        for user, password in users.items():
            config = {"version": 1, "config": {m: scram_entry(password, m) for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")}}
            path = f"/config/users/{user}"
            data = json.dumps(config).encode()
            if zk.exists(path):
                zk.set(path, data)
            else:
                zk.create(path, data, makepath=True)
            zk.create("/config/changes/config_change_", json.dumps({"version": 2, "entity_path": f"users/{user}"}).encode(),
                      sequence=True, makepath=True)
    finally:
        zk.stop()
        zk.close()


def jaas_plain(users, username=None, password=None):
    opts = "".join(f' user_{u}="{p}"' for u, p in users.items())
    own = f' username="{username}" password="{password}"' if username else ""
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required{own}{opts};"


def broker_lines(host, ports, ca_pem, keystore_pem):
    """server.properties lines for listeners PLAINTEXT (clients, User:ANONYMOUS), SSL (clients),
    SASL_SSL (clients: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER unsecured) and INTERNAL (SASL_SSL
    PLAIN, the inter-broker listener), with the ACL authorizer on. ports: dict listener -> port."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return [
        "listeners=" + ",".join(f"{n}://{host}:{p}" for n, p in ports.items()),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,INTERNAL:SASL_SSL",
        "inter.broker.listener.name=INTERNAL",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.internal.sasl.enabled.mechanisms=PLAIN",
        "listener.name.internal.plain.sasl.jaas.config=" + jaas_plain({ADMIN: USERS[ADMIN]}, ADMIN, USERS[ADMIN]),
        "listener.name.sasl_ssl.plain.sasl.jaas.config=" + jaas_plain(USERS),
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=" + scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + scram,
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config="
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore_pem}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_pem}",
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        f"super.users=User:ANONYMOUS;User:{ADMIN}",
        "allow.everyone.if.no.acl.found=false",
    ]


def runner_env(host, ports, ca_pem):
    """What run-compat.sh hands the runners (compat/lib/security.py)."""
    return {
        "COMPAT_SSL_ADDR": f"{host}:{ports['SSL']}",
        "COMPAT_SASL_SSL_ADDR": f"{host}:{ports['SASL_SSL']}",
        "COMPAT_CA_FILE": ca_pem,
        "COMPAT_ADMIN_USER": ADMIN, "COMPAT_ADMIN_PASSWORD": USERS[ADMIN],
        "COMPAT_USER": USER, "COMPAT_PASSWORD": USERS[USER],
    }
