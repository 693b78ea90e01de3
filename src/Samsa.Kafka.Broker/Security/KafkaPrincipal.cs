namespace Samsa.Kafka.Broker.Security;

/// <summary>Who a connection acts as, in upstream's "Type:Name" form ("User:alice",
/// "User:ANONYMOUS" before or without authentication, "User:CN=client,O=Org" from a TLS client
/// certificate without mapping rules).</summary>
public sealed record KafkaPrincipal(string Type, string Name)
{
    public const string UserType = "User";

    /// <summary>The principal of a connection that did not authenticate (PLAINTEXT, SSL without a
    /// client certificate), as upstream's KafkaPrincipal.ANONYMOUS.</summary>
    public static readonly KafkaPrincipal Anonymous = new(UserType, "ANONYMOUS");

    public static KafkaPrincipal User(string name) => new(UserType, name);

    /// <summary>Parses "Type:Name" (the name may contain ':'); null when there is no ':'.</summary>
    public static KafkaPrincipal? TryParse(string? text)
    {
        if (text is null) return null;
        int colon = text.IndexOf(':');
        return colon <= 0 ? null : new KafkaPrincipal(text[..colon], text[(colon + 1)..]);
    }

    public override string ToString() => $"{Type}:{Name}";
}
