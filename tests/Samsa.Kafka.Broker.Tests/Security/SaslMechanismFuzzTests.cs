using System.Text;
using Samsa.Kafka.Broker.Security.Sasl;

namespace Samsa.Kafka.Broker.Tests.Security;

/// <summary>Hostile tokens straight into the server mechanisms: whatever the bytes, the outcome is a
/// challenge or a <see cref="SaslFailedException"/> (the broker's SASL_AUTHENTICATION_FAILED), never
/// another exception and never a completed exchange without the right password.</summary>
public class SaslMechanismFuzzTests
{
    private static readonly JaasLoginModule Plain = new(SaslService.PlainLoginModule, "required",
        new Dictionary<string, string> { ["user_alice"] = "alice-secret" });
    private static readonly ScramCredential Alice256 = ScramMechanism.Sha256.Credential("alice-secret", 4096);

    private static ScramCredential? Lookup(string user, ScramMechanism m) => user == "alice" && m == ScramMechanism.Sha256 ? Alice256 : null;

    private static byte[] Mutate(Random rnd, byte[] seed)
    {
        var b = seed.ToList();
        int edits = rnd.Next(1, 6);
        for (int i = 0; i < edits; i++)
        {
            switch (rnd.Next(4))
            {
                case 0 when b.Count > 0: b[rnd.Next(b.Count)] = (byte)rnd.Next(256); break;
                case 1: b.Insert(rnd.Next(b.Count + 1), (byte)"=,\0\u0001naprcsi"[rnd.Next(11)]); break;
                case 2 when b.Count > 0: b.RemoveAt(rnd.Next(b.Count)); break;
                default: if (b.Count > 0) b = b.Take(rnd.Next(b.Count)).ToList(); break;
            }
        }
        return [.. b];
    }

    private static void Expect(Func<byte[]> evaluate)
    {
        try { evaluate(); }
        catch (SaslFailedException) { }
    }

    [Fact]
    public void RandomAndMutatedTokensNeverCrashOrAuthenticate()
    {
        var rnd = new Random(1234);
        string[] plainSeeds = ["\0alice\0alice-secret", "alice\0alice\0alice-secret", "\0\0"];
        string[] scramFirst = ["n,,n=alice,r=abc", "n,a=alice,n=alice,r=abc,tokenauth=true", "n,,n=al=2Cice,r=x"];
        string[] oauth = ["n,,\u0001auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.\u0001\u0001", "n,a=x,\u0001auth=Bearer a.b.c\u0001k=v\u0001\u0001"];
        for (int i = 0; i < 20_000; i++)
        {
            var plainToken = rnd.Next(4) == 0 ? RandomBytes(rnd) : Mutate(rnd, Encoding.UTF8.GetBytes(plainSeeds[rnd.Next(plainSeeds.Length)]));
            var plain = new PlainSaslServer(Plain);
            Expect(() => plain.Evaluate(plainToken));
            if (plain.IsComplete) Assert.Equal(["alice", "alice-secret"], Encoding.UTF8.GetString(plainToken).Split('\0')[1..]);

            var scram = new ScramSaslServer(ScramMechanism.Sha256, Lookup);
            var first = rnd.Next(4) == 0 ? RandomBytes(rnd) : Mutate(rnd, Encoding.UTF8.GetBytes(scramFirst[rnd.Next(scramFirst.Length)]));
            Expect(() =>
            {
                var serverFirst = scram.Evaluate(first);
                var final = Mutate(rnd, Encoding.UTF8.GetBytes($"c=biws,r={Encoding.UTF8.GetString(serverFirst).Split(',')[0][2..]},p={Convert.ToBase64String(new byte[32])}"));
                return scram.Evaluate(final);
            });
            Assert.False(scram.IsComplete);

            var ob = new OAuthBearerSaslServer(new UnsecuredJwtValidator(new JaasLoginModule(SaslService.OAuthBearerLoginModule, "required", new Dictionary<string, string>())).Validate);
            var token = rnd.Next(4) == 0 ? RandomBytes(rnd) : Mutate(rnd, Encoding.UTF8.GetBytes(oauth[rnd.Next(oauth.Length)]));
            Expect(() => ob.Evaluate(token));
            Expect(() => ob.Evaluate([1]));
        }
    }

    private static byte[] RandomBytes(Random rnd)
    {
        var b = new byte[rnd.Next(0, 200)];
        rnd.NextBytes(b);
        return b;
    }
}
