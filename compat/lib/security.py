"""The secured listeners of a compat target, for the sec-* scenarios of every Kafka client.

run-compat.sh starts each Samsa target with security on (`samsa dev --secure`, and the cluster
target's brokers from compat/lib/cluster.py) and hands the runners:
  COMPAT_SSL_ADDR         an SSL listener (server authentication only)
  COMPAT_SASL_SSL_ADDR    a SASL_SSL listener: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
                          OAUTHBEARER (upstream's unsecured-JWT validator)
  COMPAT_CA_FILE          the PEM CA that signed the broker certificates
  COMPAT_ADMIN_USER/_PASSWORD  a super user (PLAIN and SCRAM credentials)
  COMPAT_USER/_PASSWORD        an ordinary user with PLAIN and SCRAM credentials and no ACLs
The authorizer is upstream's AclAuthorizer with allow.everyone.if.no.acl.found=false, and
User:ANONYMOUS is a super user so the PLAINTEXT scenarios (and PLAINTEXT replication) run as
before. A target started without them (upstream, or an old samsa) makes every sec-* scenario
SKIP with the reason.

ACLs are granted through kafka-python's admin client as the super user over SASL_SSL PLAIN,
for the clients whose own admin API has no ACL calls (kcat, confluent-kafka-python 1.7).
"""
import base64
import json
import os
import time

from scenario import Skip

SSL_ADDR = os.environ.get("COMPAT_SSL_ADDR", "")
SASL_SSL_ADDR = os.environ.get("COMPAT_SASL_SSL_ADDR", "")
CA_FILE = os.environ.get("COMPAT_CA_FILE", "")
ADMIN_USER = os.environ.get("COMPAT_ADMIN_USER", "")
ADMIN_PASSWORD = os.environ.get("COMPAT_ADMIN_PASSWORD", "")
USER = os.environ.get("COMPAT_USER", "")
PASSWORD = os.environ.get("COMPAT_PASSWORD", "")

# A CA bundle that does not contain the target's CA: a client trusting only it must refuse
# the broker's certificate.
OTHER_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


def require(tls=False, sasl=False):
    if tls and not (SSL_ADDR and CA_FILE):
        raise Skip("this target has no SSL listener (COMPAT_SSL_ADDR unset)")
    if sasl and not (SASL_SSL_ADDR and CA_FILE and ADMIN_USER and USER):
        raise Skip("this target has no SASL_SSL listener with users (COMPAT_SASL_SSL_ADDR unset)")


def unsecured_jwt(subject, lifetime_s=3600, scope=None):
    """An unsecured JWS (alg none) as upstream's OAuthBearerUnsecuredLoginCallbackHandler makes:
    header.payload. with an empty signature."""
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + lifetime_s}
    if scope:
        claims["scope"] = scope
    return f"{b64({'alg': 'none'})}.{b64(claims)}."


def principal(user):
    return f"User:{user}"


def _kafka_python_admin():
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=SASL_SSL_ADDR, security_protocol="SASL_SSL", ssl_cafile=CA_FILE,
                            sasl_mechanism="PLAIN", sasl_plain_username=ADMIN_USER, sasl_plain_password=ADMIN_PASSWORD,
                            request_timeout_ms=15000, client_id="compat-acl-admin")


_OPS = {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALL"}


def grant(user, resource_type, name, operations, pattern="LITERAL", admin=None):
    """Allows `user` the operations on a resource (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID) from any
    host, through kafka-python's CreateAcls as the super user; fails loudly when the broker refuses."""
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern,
                             ResourceType)
    a = admin or _kafka_python_admin()
    try:
        acls = []
        for op in operations:
            assert op in _OPS, op
            acls.append(ACL(principal(user), "*", getattr(ACLOperation, op), ACLPermissionType.ALLOW,
                            ResourcePattern(getattr(ResourceType, resource_type), name,
                                            getattr(ACLResourcePatternType, pattern))))
        result = a.create_acls(acls)
        failed = result.get("failed") or []
        if failed:
            raise RuntimeError(f"CreateAcls failed: {failed}")
    finally:
        if admin is None:
            a.close()


def revoke_all(user, name_prefix, admin=None):
    """Deletes every ACL of `user` on resources whose names start with name_prefix (clean-up)."""
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePatternFilter, ResourceType)
    a = admin or _kafka_python_admin()
    try:
        acls, _err = a.describe_acls(ACLFilter(principal(user), None, ACLOperation.ANY, ACLPermissionType.ANY,
                                               ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
        mine = [x for x in acls if (x.resource_pattern.resource_name or "").startswith(name_prefix)]
        if mine:
            a.delete_acls(mine)
    finally:
        if admin is None:
            a.close()
