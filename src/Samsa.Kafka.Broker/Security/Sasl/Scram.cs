using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) as upstream's ScramMechanism:
/// the wire code used by Describe/AlterUserScramCredentials, the hash, and the iteration bounds.</summary>
public sealed class ScramMechanism
{
    public static readonly ScramMechanism Sha256 = new("SCRAM-SHA-256", 1, HashAlgorithmName.SHA256);
    public static readonly ScramMechanism Sha512 = new("SCRAM-SHA-512", 2, HashAlgorithmName.SHA512);
    public static readonly IReadOnlyList<ScramMechanism> All = [Sha256, Sha512];

    /// <summary>Upstream ScramMechanism.minIterations (4096 for both); credentials below it are refused.</summary>
    public const int MinIterations = 4096;
    /// <summary>The upper bound AlterUserScramCredentials accepts (upstream's maxIterations, 16384).</summary>
    public const int MaxIterations = 16384;

    private ScramMechanism(string name, sbyte type, HashAlgorithmName hash) { Name = name; Type = type; Hash = hash; }

    public string Name { get; }
    /// <summary>org.apache.kafka.clients.admin.ScramMechanism: UNKNOWN 0, SCRAM_SHA_256 1, SCRAM_SHA_512 2.</summary>
    public sbyte Type { get; }
    public HashAlgorithmName Hash { get; }
    public int HashBytes => Hash == HashAlgorithmName.SHA256 ? 32 : 64;

    public static ScramMechanism? ByName(string? name) => All.FirstOrDefault(m => m.Name == name);
    public static ScramMechanism? ByType(sbyte type) => All.FirstOrDefault(m => m.Type == type);

    public byte[] Hmac(byte[] key, byte[] data) => Hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);
    public byte[] Digest(byte[] data) => Hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA512.HashData(data);

    /// <summary>Hi(password, salt, i) of RFC 5802: PBKDF2 with this mechanism's HMAC.</summary>
    public byte[] SaltedPassword(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, Hash, HashBytes);

    public byte[] ClientKey(byte[] saltedPassword) => Hmac(saltedPassword, "Client Key"u8.ToArray());
    public byte[] ServerKey(byte[] saltedPassword) => Hmac(saltedPassword, "Server Key"u8.ToArray());
    public byte[] StoredKey(byte[] clientKey) => Digest(clientKey);

    /// <summary>The stored credential of a salted password (upstream ScramFormatter.generateCredential).</summary>
    public ScramCredential CredentialFromSaltedPassword(byte[] salt, byte[] saltedPassword, int iterations) =>
        new(salt, StoredKey(ClientKey(saltedPassword)), ServerKey(saltedPassword), iterations);

    public ScramCredential Credential(string password, int iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(32);
        return CredentialFromSaltedPassword(salt, SaltedPassword(password, salt, iterations), iterations);
    }

    public override string ToString() => Name;
}

/// <summary>What the broker keeps of a SCRAM password: salt, StoredKey, ServerKey, iterations.</summary>
public sealed record ScramCredential(byte[] Salt, byte[] StoredKey, byte[] ServerKey, int Iterations)
{
    /// <summary>Upstream ScramCredentialUtils.credentialToString, the value kept in ZooKeeper:
    /// <c>salt=...,stored_key=...,server_key=...,iterations=4096</c> (base64).</summary>
    public string Format() =>
        $"salt={Convert.ToBase64String(Salt)},stored_key={Convert.ToBase64String(StoredKey)},server_key={Convert.ToBase64String(ServerKey)},iterations={Iterations.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <see cref="Format"/>'s form; null when a part is missing or malformed.</summary>
    public static ScramCredential? Parse(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var parts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in text.Split(','))
        {
            int eq = kv.IndexOf('=');
            if (eq <= 0) return null;
            parts[kv[..eq]] = kv[(eq + 1)..];
        }
        try
        {
            if (!parts.TryGetValue("salt", out var salt) || !parts.TryGetValue("stored_key", out var stored)
                || !parts.TryGetValue("server_key", out var server) || !parts.TryGetValue("iterations", out var iter)
                || !int.TryParse(iter, NumberStyles.None, CultureInfo.InvariantCulture, out int iterations))
                return null;
            return new ScramCredential(Convert.FromBase64String(salt), Convert.FromBase64String(stored), Convert.FromBase64String(server), iterations);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>SCRAM message helpers shared by the server and the client (RFC 5802 §5, §7).</summary>
public static class ScramMessages
{
    /// <summary>A printable nonce (upstream ScramFormatter.secureRandomString: base-36 of 130 random bits).</summary>
    public static string Nonce()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        Span<byte> bytes = stackalloc byte[26];
        RandomNumberGenerator.Fill(bytes);
        var sb = new StringBuilder(26);
        foreach (var b in bytes) sb.Append(alphabet[b % alphabet.Length]);
        return sb.ToString();
    }

    /// <summary>saslname of RFC 5802: ',' and '=' escaped as =2C and =3D.</summary>
    public static string EscapeName(string name) => name.Replace("=", "=3D").Replace(",", "=2C");

    /// <summary>The user name of a saslname; null when it holds a '=' that is not =2C or =3D (RFC 5802 §5.1).</summary>
    public static string? UnescapeName(string saslName)
    {
        var sb = new StringBuilder(saslName.Length);
        for (int i = 0; i < saslName.Length; i++)
        {
            char c = saslName[i];
            if (c == ',') return null;
            if (c != '=') { sb.Append(c); continue; }
            if (i + 2 >= saslName.Length) return null;
            var code = saslName.Substring(i + 1, 2);
            if (code == "2C") sb.Append(',');
            else if (code == "3D") sb.Append('=');
            else return null;
            i += 2;
        }
        return sb.ToString();
    }

    /// <summary>Splits "k=v,k=v" attributes of a SCRAM message, keeping order; null on a malformed part.</summary>
    public static List<(char Key, string Value)>? Attributes(string message)
    {
        var list = new List<(char, string)>();
        foreach (var part in message.Split(','))
        {
            if (part.Length < 2 || part[1] != '=' || !char.IsAsciiLetter(part[0])) return null;
            list.Add((part[0], part[2..]));
        }
        return list;
    }

    public static byte[] Xor(byte[] a, byte[] b)
    {
        var r = new byte[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = (byte)(a[i] ^ b[i]);
        return r;
    }
}
