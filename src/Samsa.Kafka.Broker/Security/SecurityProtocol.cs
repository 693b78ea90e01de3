namespace Samsa.Kafka.Broker.Security;

/// <summary>The security protocol of a listener (listener.security.protocol.map), as upstream's
/// org.apache.kafka.common.security.auth.SecurityProtocol.</summary>
public enum SecurityProtocol
{
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

public static class SecurityProtocols
{
    /// <summary>Upstream's name ("SASL_SSL"), or null for a name that is not a security protocol.</summary>
    public static SecurityProtocol? Parse(string? name) => name?.Trim().ToUpperInvariant() switch
    {
        "PLAINTEXT" => SecurityProtocol.Plaintext,
        "SSL" => SecurityProtocol.Ssl,
        "SASL_PLAINTEXT" => SecurityProtocol.SaslPlaintext,
        "SASL_SSL" => SecurityProtocol.SaslSsl,
        _ => null,
    };

    public static string Name(this SecurityProtocol protocol) => protocol switch
    {
        SecurityProtocol.Plaintext => "PLAINTEXT",
        SecurityProtocol.Ssl => "SSL",
        SecurityProtocol.SaslPlaintext => "SASL_PLAINTEXT",
        SecurityProtocol.SaslSsl => "SASL_SSL",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol)),
    };

    public static bool UsesTls(this SecurityProtocol protocol) => protocol is SecurityProtocol.Ssl or SecurityProtocol.SaslSsl;
    public static bool UsesSasl(this SecurityProtocol protocol) => protocol is SecurityProtocol.SaslPlaintext or SecurityProtocol.SaslSsl;
}
