using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security;

// Placeholder until the SASL part lands: it deletes this file and registers its own checks.
public static partial class SecurityConfigCheck
{
    /// <summary>A SASL listener must not start serving unauthenticated Kafka.</summary>
    [StartupCheck]
    private static IEnumerable<string> SaslPending(BrokerConfig config)
    {
        BrokerListeners listeners;
        try { listeners = BrokerListeners.From(config); }
        catch (ConfigValueException) { yield break; }
        foreach (var l in listeners.Listeners.Where(l => l.Protocol.UsesSasl()))
            yield return $"listener {l.Name} uses {l.Protocol.Name()}: SASL is not available yet";
    }
}
