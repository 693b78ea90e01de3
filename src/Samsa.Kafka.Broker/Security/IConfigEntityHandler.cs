using Samsa.Keeper.Client;

namespace Samsa.Kafka.Broker.Security;

/// <summary>
/// A consumer of one kind of ZooKeeper config entity other than brokers and topics: SCRAM
/// credentials and quotas under <c>/config/users</c>, quotas under <c>/config/clients</c> and
/// <c>/config/ips</c>. The broker's config change listener calls every registered handler whose
/// <see cref="EntityType"/> matches the first element of a notification's entity path
/// ("users/alice", "users/alice/clients/app", "clients/&lt;default&gt;", "ips/10.0.0.1").
/// Register with <see cref="KafkaBroker.ConfigEntityHandlers"/> before the broker starts.
/// </summary>
public interface IConfigEntityHandler
{
    /// <summary>"users", "clients" or "ips".</summary>
    string EntityType { get; }

    /// <summary>A new ZooKeeper session: read every entity of this type afresh.</summary>
    Task LoadAllAsync(KeeperClient zk);

    /// <summary>A notification named this entity path (which starts with <see cref="EntityType"/>/).
    /// Read its znode (<c>/config/&lt;entityPath&gt;</c>; it may be gone) and apply it.</summary>
    Task OnChangedAsync(KeeperClient zk, string entityPath);
}
