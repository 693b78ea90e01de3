using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Broker.Tests.EndToEnd;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>Debian's clients on a SASL_PLAINTEXT listener: kafka-python 2.0.2 (python3-kafka) and
/// confluent-kafka-python over librdkafka 2.0.2 (python3-confluent-kafka), with PLAIN and SCRAM.</summary>
public class SaslExternalClientTests
{
    private const string Python = "/usr/bin/python3";

    private static (int, string, string) RunScript(string script, string args, string module, string package)
    {
        ExternalClients.Require(Python, package, probe: $"-c \"import {module}\"");
        var path = Path.Combine(Path.GetTempPath(), $"samsa-sasl-{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        try { return ExternalClients.Run(Python, $"{path} {args}", timeoutMs: 120_000); }
        finally { File.Delete(path); }
    }

    private static async Task<LiveBroker> StartWithScramUserAsync()
    {
        var live = await LiveBroker.StartAsync(null, SaslTests.SaslProps());
        foreach (var m in ScramMechanism.All)
            await live.Broker.Sasl.Credentials.AlterAsync("scrammy", new Dictionary<string, ScramCredential> { [m.Name] = m.Credential("scram-pw", 4096) }, []);
        return live;
    }

    [Fact]
    public async Task KafkaPythonPlainAndScram()
    {
        await using var live = await StartWithScramUserAsync();
        var (code, stdout, stderr) = RunScript("""
            import sys, logging
            logging.basicConfig(level=logging.ERROR)
            from kafka import KafkaProducer, KafkaConsumer, TopicPartition
            from kafka.errors import KafkaError
            bs = sys.argv[1]
            def cfg(mech, user, pw):
                return dict(bootstrap_servers=bs, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech,
                            sasl_plain_username=user, sasl_plain_password=pw)
            for mech, user, pw in [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "scrammy", "scram-pw"), ("SCRAM-SHA-512", "scrammy", "scram-pw")]:
                topic = "kp-" + mech.lower()
                p = KafkaProducer(acks="all", **cfg(mech, user, pw))
                md = p.send(topic, key=b"k", value=("v-" + mech).encode()).get(timeout=30)
                p.flush(); p.close()
                c = KafkaConsumer(group_id=None, enable_auto_commit=False, consumer_timeout_ms=5000, **cfg(mech, user, pw))
                tp = TopicPartition(topic, md.partition)
                c.assign([tp]); c.seek(tp, md.offset)
                got = [m.value.decode() for m in c]
                c.close()
                print(mech, "ok", got[0] if got else None)
            try:
                p = KafkaProducer(request_timeout_ms=5000, max_block_ms=5000, **cfg("PLAIN", "alice", "wrong"))
                p.send("kp-plain", value=b"x").get(timeout=10)
                print("wrong password accepted")
            except Exception as e:
                print("wrong password refused", type(e).__name__)
            """, live.Bootstrap, "kafka", "python3-kafka");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("PLAIN ok v-PLAIN", stdout);
        Assert.Contains("SCRAM-SHA-256 ok v-SCRAM-SHA-256", stdout);
        Assert.Contains("SCRAM-SHA-512 ok v-SCRAM-SHA-512", stdout);
        Assert.Contains("wrong password refused", stdout);
        // kafka-python 2.0.2 uses SaslHandshake v0 and raw tokens (the unframed exchange): a failed
        // PLAIN token has no error frame there, the broker closes the connection, as upstream does.
        Assert.True(stderr.Contains("_try_authenticate_plain") && stderr.Contains("Connection reset during recv"), stdout + "\n" + stderr);
    }

    [Fact]
    public async Task ConfluentKafkaPythonOnLibrdkafka202PlainAndScram()
    {
        await using var live = await StartWithScramUserAsync();
        var (code, stdout, stderr) = RunScript("""
            import sys
            from confluent_kafka import Producer, Consumer, KafkaError
            bs = sys.argv[1]
            def cfg(mech, user, pw, **extra):
                c = {"bootstrap.servers": bs, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mech,
                     "sasl.username": user, "sasl.password": pw}
                c.update(extra); return c
            for mech, user, pw in [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "scrammy", "scram-pw"), ("SCRAM-SHA-512", "scrammy", "scram-pw")]:
                topic = "ck-" + mech.lower()
                p = Producer(cfg(mech, user, pw))
                res = []
                p.produce(topic, key=b"k", value=("v-" + mech).encode(), on_delivery=lambda err, msg: res.append(err))
                p.flush(30)
                assert res == [None], res
                c = Consumer(cfg(mech, user, pw, **{"group.id": "g-" + mech, "auto.offset.reset": "earliest"}))
                c.subscribe([topic])
                m = None
                for _ in range(60):
                    m = c.poll(0.5)
                    if m is not None and m.error() is None: break
                c.close()
                print(mech, "ok", m.value().decode() if m is not None and m.error() is None else None)
            errors = []
            p = Producer(cfg("SCRAM-SHA-256", "scrammy", "wrong", **{"error_cb": lambda e: errors.append(e)}))
            for _ in range(40):
                p.poll(0.25)
                if any(e.code() == KafkaError._AUTHENTICATION for e in errors): break
            auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
            print("wrong password:", auth[0].str() if auth else errors)
            """, live.Bootstrap, "confluent_kafka", "python3-confluent-kafka");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("PLAIN ok v-PLAIN", stdout);
        Assert.Contains("SCRAM-SHA-256 ok v-SCRAM-SHA-256", stdout);
        Assert.Contains("SCRAM-SHA-512 ok v-SCRAM-SHA-512", stdout);
        Assert.Contains("wrong password: ", stdout);
        Assert.Contains("invalid credentials with SASL mechanism SCRAM-SHA-256", stdout);
    }
}
