namespace Samsa.Kafka.Broker.Security.Tokens;

/// <summary>Upstream KafkaApis.allowTokenRequests: token APIs need an authenticated, non-token
/// connection — never PLAINTEXT, never one-way TLS (ANONYMOUS on SSL), never a session that itself
/// authenticated with a delegation token.</summary>
public static class TokenRequests
{
    public static bool Allowed(ConnectionSession session) =>
        !session.TokenAuthenticated
        && session.SecurityProtocol != SecurityProtocol.Plaintext
        && !(session.SecurityProtocol == SecurityProtocol.Ssl && session.Principal == KafkaPrincipal.Anonymous);
}
