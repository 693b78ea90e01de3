using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security;

/// <summary>One listener of this broker: its name, security protocol, bind address and the
/// address clients are told (advertised.listeners; null when the listener is not advertised).</summary>
public sealed record BrokerListener(string Name, SecurityProtocol Protocol, string Host, int Port, ListenerEndpoint? Advertised);

/// <summary>
/// The broker's listeners as upstream KafkaConfig resolves them (ZooKeeper mode): <c>listeners</c>,
/// <c>advertised.listeners</c> (default: the listeners), <c>listener.security.protocol.map</c>
/// (default maps PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL to themselves), and the inter-broker
/// listener from <c>inter.broker.listener.name</c> or <c>security.inter.broker.protocol</c> (only one
/// may be set). Listener names are case-insensitive and upper-cased (ListenerName.normalised). Every
/// check throws <see cref="ConfigValueException"/> with upstream's message, so the broker stops at
/// start with one line.
/// </summary>
public sealed class BrokerListeners
{
    private BrokerListeners(IReadOnlyList<BrokerListener> listeners, IReadOnlyDictionary<string, SecurityProtocol> map, string interBrokerListener)
    {
        Listeners = listeners;
        ProtocolMap = map;
        InterBrokerListenerName = interBrokerListener;
    }

    /// <summary>Every listener in <c>listeners</c>, in configured order.</summary>
    public IReadOnlyList<BrokerListener> Listeners { get; }

    /// <summary>listener.security.protocol.map, names upper-cased.</summary>
    public IReadOnlyDictionary<string, SecurityProtocol> ProtocolMap { get; }

    /// <summary>The listener brokers use to reach each other (replication, controller, markers).</summary>
    public string InterBrokerListenerName { get; }

    public SecurityProtocol InterBrokerProtocol => ProtocolMap[InterBrokerListenerName];

    public BrokerListener? Find(string name) => Listeners.FirstOrDefault(l => l.Name == Normalize(name));

    public static string Normalize(string listenerName) => listenerName.Trim().ToUpperInvariant();

    public static BrokerListeners From(BrokerConfig config)
    {
        var map = ParseProtocolMap(config.GetString("listener.security.protocol.map") ?? "");
        var listeners = ParseEndpoints(config.GetString("listeners") ?? "", "listeners");
        CheckUnique(listeners, "listeners", config.GetString("listeners")!);
        var advertised = config.GetString("advertised.listeners") is { } adv ? ParseEndpoints(adv, "advertised.listeners") : listeners;
        // CoreUtils.listenerListToEndPoints resolves each endpoint's protocol while parsing.
        foreach (var l in listeners.Concat(advertised))
            if (!map.ContainsKey(l.ListenerName))
                throw new ConfigValueException($"No security protocol defined for listener {l.ListenerName}");
        if (config.GetString("advertised.listeners") is { } advText)
        {
            CheckUnique(advertised, "advertised.listeners", advText);
            // KafkaConfig.validateValues.
            var names = listeners.Select(l => l.ListenerName).ToHashSet();
            if (!advertised.All(a => names.Contains(a.ListenerName)))
                throw new ConfigValueException("advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. "
                    + $"Found {string.Join(",", advertised.Select(a => a.ListenerName))}. The valid options based on the current configuration are {string.Join(",", names)}");
            if (advertised.Any(a => a.Host == "0.0.0.0"))
                throw new ConfigValueException("advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.");
        }
        // Only an explicitly configured security.inter.broker.protocol counts as "set" (it has a default).
        bool nameSet = config.GetString("inter.broker.listener.name") is { Length: > 0 };
        bool protocolSet = config.StaticProps.ContainsKey("security.inter.broker.protocol");
        if (nameSet && protocolSet)
            throw new ConfigValueException("Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.");
        string interBroker;
        if (nameSet)
        {
            interBroker = Normalize(config.GetString("inter.broker.listener.name")!);
        }
        else
        {
            string protocolName = config.GetString("security.inter.broker.protocol") ?? "PLAINTEXT";
            var protocol = SecurityProtocols.Parse(protocolName)
                ?? throw new ConfigValueException($"Invalid value {protocolName} for configuration security.inter.broker.protocol: String must be one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL");
            interBroker = protocol.Name();
        }
        if (!advertised.Any(a => a.ListenerName == interBroker))
            throw new ConfigValueException($"inter.broker.listener.name must be a listener name defined in advertised.listeners. "
                + $"The valid options based on currently configured listeners are {string.Join(",", advertised.Select(a => a.ListenerName))}");

        var resolved = listeners.Select(l => new BrokerListener(l.ListenerName, map[l.ListenerName], l.Host, l.Port,
            advertised.FirstOrDefault(a => a.ListenerName == l.ListenerName))).ToList();
        return new BrokerListeners(resolved, map, interBroker);
    }

    /// <summary>listener.security.protocol.map: NAME:PROTOCOL pairs (KafkaConfig.getMap, then
    /// getSecurityProtocol for each value).</summary>
    public static Dictionary<string, SecurityProtocol> ParseProtocolMap(string text)
    {
        var map = new Dictionary<string, SecurityProtocol>(StringComparer.Ordinal);
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = entry.IndexOf(':');
            if (colon <= 0 || colon == entry.Length - 1)
                throw new ConfigValueException($"Invalid value {text} for configuration listener.security.protocol.map: Map entry '{entry}' is improperly formatted");
            string protocolName = entry[(colon + 1)..].Trim();
            var protocol = SecurityProtocols.Parse(protocolName)
                ?? throw new ConfigValueException($"Invalid security protocol `{protocolName}` defined in listener.security.protocol.map");
            map[Normalize(entry[..colon])] = protocol;
        }
        return map;
    }

    private static List<ListenerEndpoint> ParseEndpoints(string text, string key)
    {
        var list = ListenerEndpoint.ParseList(text).Select(e => e with { ListenerName = Normalize(e.ListenerName) }).ToList();
        if (list.Count == 0 && key == "listeners")
            throw new ConfigValueException("listeners must contain at least one listener");
        return list;
    }

    // CoreUtils.listenerListToEndPoints: names, and ports other than 0, must differ.
    private static void CheckUnique(List<ListenerEndpoint> endpoints, string key, string text)
    {
        if (endpoints.Select(e => e.ListenerName).Distinct().Count() != endpoints.Count)
            throw new ConfigValueException($"Each listener must have a different name, {key}: {text}");
        var ports = endpoints.Where(e => e.Port != 0).Select(e => (e.Host, e.Port)).ToList();
        if (key == "listeners" && ports.Select(p => p.Port).Distinct().Count() != ports.Count)
            throw new ConfigValueException($"Each listener must have a different port, {key}: {text}");
    }
}
