using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Client;

public sealed partial class KafkaWireClient
{
    /// <summary>The session lifetime the broker granted at the last authentication (0 = none, KIP-368).</summary>
    public long SaslSessionLifetimeMs { get; private set; }

    /// <summary>
    /// Authenticates this connection on a SASL listener as upstream's client does (SaslClientAuthenticator):
    /// ApiVersions, SaslHandshake v1 naming the mechanism, then SaslAuthenticate round trips until the
    /// mechanism completes. Throws <see cref="SaslAuthenticationException"/> with the broker's message.
    /// </summary>
    public Task AuthenticateAsync(string mechanism, string username, string password, CancellationToken ct = default) =>
        AuthenticateAsync(SaslClients.Create(mechanism, username, password), ct);

    /// <summary>Authenticates with a delegation token (KIP-48): SCRAM with the tokenauth=true
    /// extension, the token id as user name and the base64 of its HMAC as password.</summary>
    public Task AuthenticateWithTokenAsync(string mechanism, string tokenId, byte[] hmac, CancellationToken ct = default) =>
        AuthenticateAsync(new ScramSaslClient(ScramMechanism.ByName(mechanism) ?? throw new NotSupportedException($"delegation tokens authenticate with SCRAM, not {mechanism}"),
            tokenId, Convert.ToBase64String(hmac), tokenAuth: true), ct);

    private async Task AuthenticateAsync(ISaslClientMechanism client, CancellationToken ct)
    {
        string mechanism = client.Mechanism;
        var versions = await SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "samsa", ClientSoftwareVersion = "1.0" }, 3, ct: ct)
            ?? throw new IOException("no ApiVersions response");
        short authVersion = 2;
        foreach (var k in versions.ApiKeys)
            if (k.ApiKey == (short)ApiKey.SaslAuthenticate) authVersion = Math.Min(authVersion, k.MaxVersion);
        var handshake = await SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanism }, 1, ct: ct)
            ?? throw new IOException("no SaslHandshake response");
        if (handshake.ErrorCode != 0)
            throw new SaslAuthenticationException(handshake.ErrorCode == (short)ErrorCode.UnsupportedSaslMechanism
                ? $"Client SASL mechanism '{mechanism}' not enabled in the server, enabled mechanisms are [{string.Join(", ", handshake.Mechanisms)}]"
                : $"SaslHandshake failed with error {(ErrorCode)handshake.ErrorCode}");
        byte[]? token = client.InitialResponse();
        while (true)
        {
            var r = await SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = token }, authVersion, ct: ct)
                ?? throw new IOException("no SaslAuthenticate response");
            if (r.ErrorCode != 0) throw new SaslAuthenticationException(r.ErrorMessage ?? ((ErrorCode)r.ErrorCode).ToString());
            try
            {
                token = client.IsComplete && r.AuthBytes is not { Length: > 0 } ? null : client.EvaluateChallenge(r.AuthBytes ?? []);
            }
            catch (SaslFailedException e) { throw new SaslAuthenticationException(e.Message); }
            if (token is null)
            {
                if (!client.IsComplete) throw new SaslAuthenticationException("SASL exchange ended before the mechanism completed");
                SaslSessionLifetimeMs = r.SessionLifetimeMs;
                return;
            }
        }
    }
}
