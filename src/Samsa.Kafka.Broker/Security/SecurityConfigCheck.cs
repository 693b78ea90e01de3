using System.Reflection;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security;

/// <summary>Marks a static method of <see cref="SecurityConfigCheck"/> as a start-up check:
/// <c>static IEnumerable&lt;string&gt; Name(BrokerConfig config)</c>, yielding one line per problem.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class StartupCheckAttribute : Attribute;

/// <summary>
/// "Never pretend" (issue #15): run once when the broker starts, before any listener is bound. A
/// configuration Samsa cannot honour in a way that would leave the broker less secure than the user
/// asked for (a security protocol, listener, keystore, principal builder, authorizer, SASL setting it
/// cannot apply) stops the start with one clear line per problem, instead of serving plain or
/// unauthenticated Kafka.
///
/// Each part of the security work adds its checks in its own file as a partial of this class: a
/// static method marked <see cref="StartupCheckAttribute"/> taking the <see cref="BrokerConfig"/>
/// and yielding problem lines (a thrown <see cref="ConfigValueException"/> counts as one line). All
/// checks run, in method-name order, so a user sees every problem at once.
/// </summary>
public static partial class SecurityConfigCheck
{
    /// <summary>Every problem line of every registered check (empty when the configuration is honoured).</summary>
    public static IReadOnlyList<string> Problems(BrokerConfig config)
    {
        var problems = new List<string>();
        var checks = typeof(SecurityConfigCheck)
            .GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(m => m.GetCustomAttribute<StartupCheckAttribute>() is not null)
            .OrderBy(m => m.Name, StringComparer.Ordinal);
        foreach (var check in checks)
        {
            try
            {
                var lines = (IEnumerable<string>?)check.Invoke(null, [config]);
                if (lines is not null) problems.AddRange(lines.Where(l => !string.IsNullOrWhiteSpace(l)));
            }
            catch (TargetInvocationException e) when (e.InnerException is ConfigValueException c)
            {
                problems.Add(c.Message);
            }
        }
        return problems.Distinct().ToList();
    }

    /// <summary>Throws <see cref="ConfigValueException"/> (one line per problem) when a check fails.</summary>
    public static void Run(BrokerConfig config)
    {
        var problems = Problems(config);
        if (problems.Count > 0) throw new ConfigValueException(string.Join(Environment.NewLine, problems));
    }

    // ---------------------------------------------------------------- listeners and TLS (this part)

    /// <summary>listeners, advertised.listeners, listener.security.protocol.map and the inter-broker
    /// listener resolve as upstream's KafkaConfig requires (unknown protocols, listeners missing from
    /// the map, both inter-broker keys set are refused).</summary>
    [StartupCheck]
    private static IEnumerable<string> Listeners(BrokerConfig config)
    {
        BrokerListeners.From(config);
        return [];
    }

    /// <summary>Every TLS listener has a keystore Samsa can read (no JKS), valid ssl.client.auth,
    /// protocols and cipher suites; the inter-broker listener's client side is valid too.</summary>
    [StartupCheck]
    private static IEnumerable<string> TlsListeners(BrokerConfig config)
    {
        BrokerListeners listeners;
        try { listeners = BrokerListeners.From(config); }
        catch (ConfigValueException) { yield break; } // reported by Listeners
        foreach (var l in listeners.Listeners.Where(l => l.Protocol.UsesTls()))
        {
            string? problem = null;
            try
            {
                var ssl = new SslSettings(config, l.Name);
                ssl.ServerOptions(l.Protocol);
                if (l.Name == listeners.InterBrokerListenerName) ssl.ClientOptions();
            }
            catch (ConfigValueException e) { problem = e.Message; }
            if (problem is not null) yield return problem;
        }
        if (config.GetString("ssl.engine.factory.class") is { Length: > 0 } engine)
            yield return $"ssl.engine.factory.class={engine} is not supported (Samsa uses the OS TLS stack through .NET's SslStream)";
    }

    private const string DefaultPrincipalBuilder = "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder";

    /// <summary>Principals come from upstream's DefaultKafkaPrincipalBuilder rules only; a custom
    /// builder class cannot run here, and ignoring it would hand out other principals than the user's
    /// ACLs expect.</summary>
    [StartupCheck]
    private static IEnumerable<string> PrincipalBuilder(BrokerConfig config)
    {
        var keys = config.StaticProps.Keys.Where(k => k == "principal.builder.class"
            || (k.StartsWith("listener.name.", StringComparison.Ordinal) && k.EndsWith(".principal.builder.class", StringComparison.Ordinal)));
        foreach (var key in keys)
        {
            string value = config.StaticProps[key].Trim();
            if (value.Length > 0 && value != DefaultPrincipalBuilder)
                yield return $"{key}={value} is not supported: Samsa builds principals as {DefaultPrincipalBuilder} (ssl.principal.mapping.rules, SASL authorization ids)";
        }
        string? rules = config.GetString("ssl.principal.mapping.rules");
        string? problem = null;
        try { SslPrincipalMapper.Parse(rules); }
        catch (ConfigValueException e) { problem = e.Message; }
        if (problem is not null) yield return problem;
    }
}
