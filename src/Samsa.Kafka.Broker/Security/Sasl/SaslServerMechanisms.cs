using System.Security.Cryptography;
using System.Text;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>
/// A failed SASL exchange. As upstream's SaslServerAuthenticator: a SaslAuthenticationException's
/// message goes to the client as is (<see cref="ClientVisible"/>); for any other SaslException the
/// client only learns "Authentication failed during authentication due to invalid credentials with
/// SASL mechanism X" and the detail stays in the broker log.
/// </summary>
public sealed class SaslFailedException(string message, bool clientVisible) : Exception(message)
{
    public bool ClientVisible { get; } = clientVisible;
}

/// <summary>The server side of one mechanism's exchange (javax.security.sasl.SaslServer).</summary>
public interface ISaslServerMechanism
{
    string Mechanism { get; }
    /// <summary>The next challenge for a client response; throws <see cref="SaslFailedException"/>.</summary>
    byte[] Evaluate(byte[] response);
    bool IsComplete { get; }
    /// <summary>The authenticated user (the principal's name) once complete.</summary>
    string? AuthorizationId { get; }
    /// <summary>When the credential itself expires (OAUTHBEARER token exp), in Unix ms; bounds the
    /// session lifetime (upstream CREDENTIAL_LIFETIME_MS_SASL_NEGOTIATED_PROPERTY_KEY).</summary>
    long? CredentialExpiryMs { get; }
}

/// <summary>SASL/PLAIN (RFC 4616) checked against the JAAS options <c>user_NAME="password"</c>, as
/// upstream's PlainSaslServer with PlainServerCallbackHandler.</summary>
public sealed class PlainSaslServer(JaasLoginModule jaas) : ISaslServerMechanism
{
    public string Mechanism => "PLAIN";
    public bool IsComplete { get; private set; }
    public string? AuthorizationId { get; private set; }
    public long? CredentialExpiryMs => null;

    public byte[] Evaluate(byte[] response)
    {
        if (IsComplete) throw new SaslFailedException("Unexpected response after authentication completed", false);
        // authzid NUL authcid NUL passwd; upstream counts tokens and wants exactly three.
        var text = Encoding.UTF8.GetString(response);
        var tokens = text.Split('\0');
        if (tokens.Length != 3)
            throw new SaslFailedException($"Invalid SASL/PLAIN response: expected 3 tokens, got {tokens.Length}", false);
        string authzid = tokens[0], username = tokens[1], password = tokens[2];
        if (username.Length == 0) throw new SaslFailedException("Authentication failed: username not specified", true);
        if (password.Length == 0) throw new SaslFailedException("Authentication failed: password not specified", true);
        var expected = jaas.Option("user_" + username);
        if (expected is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(password)))
            throw new SaslFailedException("Authentication failed: Invalid username or password", true);
        if (authzid.Length > 0 && authzid != username)
            throw new SaslFailedException("Authentication failed: Client requested an authorization id that is different from username", true);
        AuthorizationId = username;
        IsComplete = true;
        return [];
    }
}

/// <summary>
/// SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as upstream's ScramSaslServer: client-first (gs2 header
/// "n", optional authzid equal to the user, extensions of which only <c>tokenauth</c> is known),
/// server-first with the combined nonce, salt and iterations, client-final checked for the nonce,
/// the channel binding and the proof, server-final with the server signature.
/// </summary>
public sealed class ScramSaslServer(ScramMechanism mechanism, Func<string, ScramMechanism, ScramCredential?> credentials,
    Tokens.DelegationTokenManager? tokens = null) : ISaslServerMechanism
{
    private enum State { ClientFirst, ClientFinal, Complete, Failed }
    private State _state;
    private string _clientFirstBare = "";
    private string _gs2Header = "";
    private string _serverFirst = "";
    private string _nonce = "";
    private ScramCredential? _credential;

    public string Mechanism => mechanism.Name;
    public bool IsComplete => _state == State.Complete;
    public string? AuthorizationId { get; private set; }
    /// <summary>A token's expiry bounds the session (upstream CREDENTIAL_LIFETIME_MS); null otherwise.</summary>
    public long? CredentialExpiryMs { get; private set; }
    /// <summary>tokenauth=true succeeded: the token's owner, whom the session becomes.</summary>
    public KafkaPrincipal? TokenOwner { get; private set; }

    public byte[] Evaluate(byte[] response)
    {
        try
        {
            return _state switch
            {
                State.ClientFirst => ClientFirst(response),
                State.ClientFinal => ClientFinal(response),
                _ => throw new SaslFailedException($"Unexpected challenge in Sasl server state {_state}", false),
            };
        }
        catch (SaslFailedException)
        {
            _credential = null;
            _state = State.Failed;
            throw;
        }
    }

    private static string Utf8(byte[] bytes)
    {
        try { return new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw new SaslFailedException("Invalid SCRAM message: not UTF-8", false); }
    }

    private byte[] ClientFirst(byte[] response)
    {
        var text = Utf8(response);
        // gs2-header: "n," [ "a=" saslname ] ","; upstream accepts only "n" (no channel binding).
        if (!text.StartsWith("n,", StringComparison.Ordinal)) throw new SaslFailedException("Invalid SCRAM client first message format", false);
        int second = text.IndexOf(',', 2);
        if (second < 0) throw new SaslFailedException("Invalid SCRAM client first message format", false);
        string authzPart = text[2..second];
        string? authzid = null;
        if (authzPart.Length > 0)
        {
            if (!authzPart.StartsWith("a=", StringComparison.Ordinal)) throw new SaslFailedException("Invalid SCRAM client first message format", false);
            authzid = ScramMessages.UnescapeName(authzPart[2..]) ?? throw new SaslFailedException("Invalid SCRAM client first message format", false);
        }
        _gs2Header = text[..(second + 1)];
        _clientFirstBare = text[(second + 1)..];
        var parts = _clientFirstBare.Split(',');
        if (parts.Length < 2 || !parts[0].StartsWith("n=", StringComparison.Ordinal) || !parts[1].StartsWith("r=", StringComparison.Ordinal) || parts[1].Length == 2)
            throw new SaslFailedException("Invalid SCRAM client first message format", false);
        string user = ScramMessages.UnescapeName(parts[0][2..]) ?? throw new SaslFailedException("Invalid SCRAM client first message format", false);
        string clientNonce = parts[1][2..];
        foreach (var c in clientNonce)
            if (c < 0x21 || c > 0x7e || c == ',') throw new SaslFailedException("Invalid SCRAM client first message format", false);
        // Extensions follow the nonce as key=value pairs (KIP-84); upstream knows only tokenauth.
        bool tokenAuth = false;
        foreach (var ext in Extensions(_clientFirstBare))
            if (ext.Key == "tokenauth") tokenAuth = ext.Value.Equals("true", StringComparison.OrdinalIgnoreCase);
        var unknown = Extensions(_clientFirstBare).Where(e => e.Key != "tokenauth").Select(e => e.Key).ToList();
        if (unknown.Count > 0) throw new SaslFailedException($"Unsupported extensions will not be fulfilled: [{string.Join(", ", unknown)}]", false);
        if (tokenAuth)
        {
            // Upstream ScramSaslServer with tokenauth: the user name is a token id, the credential
            // the token's (password = base64 of its HMAC); an unknown or expired token fails.
            var token = tokens is { Enabled: true } ? tokens.Token(user) : null;
            _credential = token is null ? null : tokens!.Credential(user, mechanism);
            if (token is null || _credential is null) throw new SaslFailedException($"Token Authentication failed: Invalid tokenId : {user}", false);
            if (token.ExpiryTimestamp < tokens!.Now() || token.MaxTimestamp < tokens.Now())
                throw new SaslFailedException("Authentication failed: Delegation Token is expired", true);
            TokenOwner = token.Owner;
            CredentialExpiryMs = token.ExpiryTimestamp;
        }
        else _credential = credentials(user, mechanism);
        if (_credential is null) throw new SaslFailedException("Authentication failed: Invalid user credentials", false);
        if (authzid is { Length: > 0 } && authzid != user)
            throw new SaslFailedException("Authentication failed: Client requested an authorization id that is different from username", true);
        if (_credential.Iterations < ScramMechanism.MinIterations)
            throw new SaslFailedException($"Iterations {_credential.Iterations} is less than the minimum {ScramMechanism.MinIterations} for {mechanism.Name}", false);
        AuthorizationId = user;
        _nonce = clientNonce + ScramMessages.Nonce();
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(_credential.Salt)},i={_credential.Iterations}";
        _state = State.ClientFinal;
        return Encoding.UTF8.GetBytes(_serverFirst);
    }

    /// <summary>The extensions after "n=...,r=..." of a client-first-bare (",key=value" pairs, names of letters).</summary>
    private static IEnumerable<KeyValuePair<string, string>> Extensions(string clientFirstBare)
    {
        var parts = clientFirstBare.Split(',');
        for (int i = 2; i < parts.Length; i++)
        {
            int eq = parts[i].IndexOf('=');
            if (eq <= 0 || !parts[i][..eq].All(char.IsAsciiLetter))
                throw new SaslFailedException("Invalid SCRAM client first message format", false);
            yield return new(parts[i][..eq], parts[i][(eq + 1)..]);
        }
    }

    private byte[] ClientFinal(byte[] response)
    {
        var text = Utf8(response);
        int proofAt = text.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0) throw new SaslFailedException("Invalid SCRAM client final message format", false);
        string withoutProof = text[..proofAt];
        var attrs = withoutProof.Split(',');
        if (attrs.Length < 2 || !attrs[0].StartsWith("c=", StringComparison.Ordinal) || !attrs[1].StartsWith("r=", StringComparison.Ordinal))
            throw new SaslFailedException("Invalid SCRAM client final message format", false);
        byte[] proof, binding;
        try
        {
            proof = Convert.FromBase64String(text[(proofAt + 3)..]);
            binding = Convert.FromBase64String(attrs[0][2..]);
        }
        catch (FormatException) { throw new SaslFailedException("Invalid SCRAM client final message format", false); }
        // Upstream checks that the final nonce ends with the combined nonce (endsWith, not equals):
        // librdkafka before 2.x sends client nonce + combined nonce, and Kafka accepts it.
        if (!attrs[1][2..].EndsWith(_nonce, StringComparison.Ordinal)) throw new SaslFailedException("Invalid client nonce in the final client message.", false);
        // RFC 5802 §5.1: c= carries the base64 of the gs2 header sent in client-first.
        if (Encoding.UTF8.GetString(binding) != _gs2Header) throw new SaslFailedException("Invalid channel binding in the final client message.", false);
        var cred = _credential!;
        if (proof.Length != cred.StoredKey.Length) throw new SaslFailedException("Invalid client credentials", false);
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        var clientSignature = mechanism.Hmac(cred.StoredKey, authMessage);
        var clientKey = ScramMessages.Xor(proof, clientSignature);
        if (!CryptographicOperations.FixedTimeEquals(mechanism.Digest(clientKey), cred.StoredKey))
            throw new SaslFailedException("Invalid client credentials", false);
        var serverSignature = mechanism.Hmac(cred.ServerKey, authMessage);
        _credential = null;
        _state = State.Complete;
        return Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature));
    }
}
