namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>One partition's state znode with its zkVersion (the controller updates it
/// conditionally, as upstream's controller does with updateLeaderAndIsr).</summary>
public sealed record PartitionStateEntry(ZkData.PartitionState State, int ZkVersion);

public sealed class TopicView
{
    public required string Name { get; init; }
    public required Guid? Id { get; init; }
    public required SortedDictionary<int, List<int>> Assignment { get; init; }
    public required int AssignmentZkVersion { get; init; }
    public required Dictionary<string, string> Configs { get; init; }
    /// <summary>Partitions being reassigned (KIP-455): replicas being added / removed, from the topic znode.</summary>
    public SortedDictionary<int, List<int>> AddingReplicas { get; init; } = [];
    public SortedDictionary<int, List<int>> RemovingReplicas { get; init; } = [];
    public Dictionary<int, PartitionStateEntry> States { get; } = [];
}

/// <summary>
/// A consistent-enough picture of the cluster read from ZooKeeper in one pass: live brokers,
/// the controller, topics with their assignments, partition states and configs, and pending
/// deletions. Every broker keeps the latest one; the controller also acts on it.
/// </summary>
public sealed class ClusterView
{
    public static readonly ClusterView Empty = new();

    public SortedDictionary<int, ZkData.BrokerRegistration> Brokers { get; } = [];
    public int ControllerId { get; set; } = -1;
    public Dictionary<string, TopicView> Topics { get; } = new(StringComparer.Ordinal);
    public HashSet<string> PendingDeletes { get; } = new(StringComparer.Ordinal);
    /// <summary>Whether /admin/reassign_partitions exists (the controller then reads and acts on it).</summary>
    public bool LegacyReassignmentPending { get; set; }
    /// <summary>The /feature znode's bytes (null when absent) and version (-1 when absent).</summary>
    public byte[]? FeatureData { get; set; }
    public int FeatureZkVersion { get; set; } = -1;
}
