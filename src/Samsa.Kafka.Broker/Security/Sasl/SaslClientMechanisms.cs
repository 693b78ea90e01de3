using System.Globalization;
using System.Text;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>The client side of one mechanism's exchange (javax.security.sasl.SaslClient).</summary>
public interface ISaslClientMechanism
{
    string Mechanism { get; }
    /// <summary>The first token (client-first); SASL client mechanisms here all speak first.</summary>
    byte[] InitialResponse();
    /// <summary>The answer to a server challenge; null once the exchange is complete on our side.
    /// Throws <see cref="SaslFailedException"/> when the server's answer is wrong.</summary>
    byte[]? EvaluateChallenge(byte[] challenge);
    bool IsComplete { get; }
}

/// <summary>The client of the SASL failures a broker reports (SASL_AUTHENTICATION_FAILED,
/// UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE) or that the client detects itself.</summary>
public sealed class SaslAuthenticationException(string message) : Exception(message);

public static class SaslClients
{
    public static ISaslClientMechanism Create(string mechanism, string username, string password) => mechanism switch
    {
        "PLAIN" => new PlainSaslClient(username, password),
        "SCRAM-SHA-256" => new ScramSaslClient(ScramMechanism.Sha256, username, password),
        "SCRAM-SHA-512" => new ScramSaslClient(ScramMechanism.Sha512, username, password),
        _ => throw new NotSupportedException($"SASL mechanism {mechanism} is not supported by Samsa's client (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"),
    };
}

/// <summary>PLAIN: one message, NUL authcid NUL password (no authzid), as upstream's PlainSaslClient via the JDK.</summary>
public sealed class PlainSaslClient(string username, string password) : ISaslClientMechanism
{
    public string Mechanism => "PLAIN";
    public bool IsComplete { get; private set; }
    public byte[] InitialResponse()
    {
        IsComplete = true;
        return Encoding.UTF8.GetBytes($"\0{username}\0{password}");
    }
    public byte[]? EvaluateChallenge(byte[] challenge) => null;
}

/// <summary>SCRAM client (RFC 5802) as upstream's ScramSaslClient: client-first with a fresh nonce,
/// client-final with the proof, and the server signature checked before trusting the broker.
/// <paramref name="tokenAuth"/> adds the tokenauth=true extension (KIP-48 delegation tokens).</summary>
public sealed class ScramSaslClient(ScramMechanism mechanism, string username, string password, bool tokenAuth = false) : ISaslClientMechanism
{
    private string _clientNonce = "";
    private string _clientFirstBare = "";
    private byte[]? _saltedPassword;
    private string _authMessage = "";
    private int _step;

    public string Mechanism => mechanism.Name;
    public bool IsComplete { get; private set; }

    public byte[] InitialResponse()
    {
        _clientNonce = ScramMessages.Nonce();
        _clientFirstBare = $"n={ScramMessages.EscapeName(username)},r={_clientNonce}" + (tokenAuth ? ",tokenauth=true" : "");
        _step = 1;
        return Encoding.UTF8.GetBytes("n,," + _clientFirstBare);
    }

    public byte[]? EvaluateChallenge(byte[] challenge)
    {
        var text = Encoding.UTF8.GetString(challenge);
        if (_step == 1)
        {
            // r=nonce,s=salt,i=iterations
            var parts = text.Split(',');
            if (parts.Length < 3 || !parts[0].StartsWith("r=", StringComparison.Ordinal) || !parts[1].StartsWith("s=", StringComparison.Ordinal)
                || !parts[2].StartsWith("i=", StringComparison.Ordinal))
                throw new SaslFailedException($"Invalid SCRAM server first message: {text}", true);
            string nonce = parts[0][2..];
            if (!nonce.StartsWith(_clientNonce, StringComparison.Ordinal) || nonce.Length == _clientNonce.Length)
                throw new SaslFailedException("Invalid server nonce: does not start with client nonce", true);
            byte[] salt;
            try { salt = Convert.FromBase64String(parts[1][2..]); }
            catch (FormatException) { throw new SaslFailedException("Invalid SCRAM server first message: salt", true); }
            if (!int.TryParse(parts[2][2..], NumberStyles.None, CultureInfo.InvariantCulture, out int iterations) || iterations < ScramMechanism.MinIterations)
                throw new SaslFailedException($"Requested iterations {parts[2][2..]} is less than the minimum {ScramMechanism.MinIterations} for {mechanism.Name}", true);
            _saltedPassword = mechanism.SaltedPassword(password, salt, iterations);
            string withoutProof = $"c=biws,r={nonce}";
            _authMessage = $"{_clientFirstBare},{text},{withoutProof}";
            var clientKey = mechanism.ClientKey(_saltedPassword);
            var signature = mechanism.Hmac(mechanism.StoredKey(clientKey), Encoding.UTF8.GetBytes(_authMessage));
            var proof = ScramMessages.Xor(clientKey, signature);
            _step = 2;
            return Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(proof)}");
        }
        if (_step == 2)
        {
            if (text.StartsWith("e=", StringComparison.Ordinal)) throw new SaslFailedException($"Sasl authentication using {mechanism.Name} failed with error: {text[2..]}", true);
            if (!text.StartsWith("v=", StringComparison.Ordinal)) throw new SaslFailedException("Invalid SCRAM server final message", true);
            var expected = mechanism.Hmac(mechanism.ServerKey(_saltedPassword!), Encoding.UTF8.GetBytes(_authMessage));
            byte[] got;
            try { got = Convert.FromBase64String(text[2..]); }
            catch (FormatException) { throw new SaslFailedException("Invalid SCRAM server final message", true); }
            if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(expected, got))
                throw new SaslFailedException("Invalid server signature in server final message", true);
            IsComplete = true;
            _step = 3;
            return null;
        }
        throw new SaslFailedException("Unexpected SCRAM challenge after completion", true);
    }
}
