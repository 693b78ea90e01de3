using Samsa.Kafka.Broker.Log;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>What the leader knows of one replica when choosing where a consumer should read
/// (upstream org.apache.kafka.common.replica.ReplicaView).</summary>
public sealed record ReplicaView(int BrokerId, string? Rack, long LogEndOffset, long TimeSinceLastCaughtUpMs);

/// <summary>Chooses the replica a consumer should fetch from (KIP-392, upstream
/// org.apache.kafka.common.replica.ReplicaSelector). Returns the leader's view to keep the
/// consumer on the leader.</summary>
public interface IReplicaSelector
{
    ReplicaView? Select(TopicPartition partition, string? clientRack, IReadOnlyCollection<ReplicaView> replicas, ReplicaView leader);
}

/// <summary>Upstream RackAwareReplicaSelector: a consumer with a rack reads from the leader when
/// the leader is in that rack, else from the most caught-up replica of that rack (highest log end,
/// then most recently caught up, then highest id); without a rack, or with no replica in its rack,
/// from the leader.</summary>
public sealed class RackAwareReplicaSelector : IReplicaSelector
{
    public const string ClassName = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

    public ReplicaView? Select(TopicPartition partition, string? clientRack, IReadOnlyCollection<ReplicaView> replicas, ReplicaView leader)
    {
        if (string.IsNullOrEmpty(clientRack)) return leader;
        var sameRack = replicas.Where(r => r.Rack == clientRack).ToList();
        if (sameRack.Count == 0 || sameRack.Contains(leader)) return leader;
        return sameRack
            .OrderByDescending(r => r.LogEndOffset)
            .ThenBy(r => r.TimeSinceLastCaughtUpMs)
            .ThenByDescending(r => r.BrokerId)
            .First();
    }
}

/// <summary>replica.selector.class (default null: consumers always read from the leader).</summary>
public static class ReplicaSelectors
{
    /// <summary>The selector named by the broker setting; upstream LeaderSelector names "read from
    /// the leader", which here is the same as no selector. Any other class cannot be loaded into a
    /// .NET broker: the broker refuses to start, as upstream does when the class is missing.</summary>
    public static IReplicaSelector? Create(string? className) => className switch
    {
        null or "" => null,
        RackAwareReplicaSelector.ClassName => new RackAwareReplicaSelector(),
        "org.apache.kafka.common.replica.LeaderSelector" => null,
        _ => throw new InvalidOperationException($"replica.selector.class {className} is not available (supported: {RackAwareReplicaSelector.ClassName})"),
    };
}
