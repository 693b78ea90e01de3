using Samsa.Kafka.Broker.Client;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>
/// How a broker authenticates its own connections to other brokers (replica fetchers, the
/// controller channel, transaction markers) when the inter-broker listener uses SASL: the mechanism
/// of <c>sasl.mechanism.inter.broker.protocol</c> and the <c>username</c>/<c>password</c> options of
/// that listener's JAAS entry for it, as upstream's inter-broker SaslChannelBuilder (client mode)
/// takes them from the same KafkaServer login context.
/// </summary>
public static class InterBrokerSasl
{
    public sealed record Credentials(string Mechanism, string Username, string Password);

    /// <summary>The inter-broker credentials, or null when the inter-broker listener has no SASL.
    /// Throws <see cref="Config.ConfigValueException"/> when the JAAS entry lacks username/password.
    /// Call after <see cref="SaslService.Start"/>.</summary>
    public static Credentials? Resolve(KafkaBroker broker)
    {
        var config = broker.Config;
        string listener = config.GetString("inter.broker.listener.name") ?? config.GetString("security.inter.broker.protocol") ?? "PLAINTEXT";
        if (SaslService.ProtocolOf(config, listener) is not { } p || !p.UsesSasl()) return null;
        string mechanism = config.GetString("sasl.mechanism.inter.broker.protocol") ?? "GSSAPI";
        var jaas = broker.Sasl.JaasOf(listener, mechanism)
            ?? throw new Config.ConfigValueException($"inter-broker listener {listener}: no JAAS entry for {mechanism}");
        if (jaas.Option("username") is not { Length: > 0 } user || jaas.Option("password") is not { } password)
            throw new Config.ConfigValueException($"inter-broker listener {listener}: the JAAS entry for {mechanism} needs username and password options for the broker's own connections");
        return new Credentials(mechanism, user, password);
    }

    /// <summary>The shape of the inter-broker connector's hook (<c>Func&lt;KafkaWireClient,
    /// CancellationToken, Task&gt;? Authenticate</c>): null when no SASL is needed.</summary>
    public static Func<KafkaWireClient, CancellationToken, Task>? Authenticator(KafkaBroker broker) =>
        Resolve(broker) is { } c ? (client, ct) => client.AuthenticateAsync(c.Mechanism, c.Username, c.Password, ct) : null;
}
