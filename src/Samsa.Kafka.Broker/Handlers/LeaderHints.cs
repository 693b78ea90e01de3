// KIP-951 leader hints for Produce (v10+) and Fetch (v16+).
//
// Upstream (KafkaApis.handleProduceRequest / handleFetchRequest, getCurrentLeader) fills a
// partition's CurrentLeader tagged field only when the partition failed with
// NOT_LEADER_OR_FOLLOWER (Produce) or NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH (Fetch), and
// lists the endpoint of each such leader that is alive in NodeEndpoints. Every other partition
// keeps the default (-1, -1), which the encoder leaves out: a client that cannot skip tagged
// fields then reads exactly what an upstream broker sends.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

internal static class LeaderHints
{
    /// <summary>The leader and epoch this broker knows for the partition (upstream getCurrentLeader:
    /// the local partition's leader, else (-1, -1)).</summary>
    internal static (int LeaderId, int LeaderEpoch) CurrentLeader(KafkaBroker broker, Partition partition) =>
        (partition.IsLeader ? broker.BrokerId : partition.LeaderId ?? -1, partition.LeaderEpoch);

    /// <summary>The endpoint of a live broker as clients reach it (upstream
    /// metadataCache.getAliveBrokerNode for the request's listener), or null when it is not alive.</summary>
    internal static (string Host, int Port, string? Rack)? AliveNode(KafkaBroker broker, int brokerId, string? listenerName = null)
    {
        if (brokerId < 0) return null;
        // Replica fetchers (no client listener given) hear the inter-broker listener's endpoints.
        foreach (var b in MetadataHandler.BrokerEntries(broker, listenerName ?? broker.InterBroker.ListenerName))
            if (b.NodeId == brokerId) return (b.Host, b.Port, b.Rack);
        return null;
    }

    /// <summary>Fetch v16+: the leader hint of a partition that failed with NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH (upstream handleFetchRequest sets it for no other error and no older version).</summary>
    internal static void Fetch(KafkaBroker broker, FetchResponse response, FetchResponse.PartitionData pd, Partition partition, short version, string? listenerName = null)
    {
        if (version < 16) return;
        var (leaderId, leaderEpoch) = CurrentLeader(broker, partition);
        pd.CurrentLeader = new FetchResponse.LeaderIdAndEpoch { LeaderId = leaderId, LeaderEpoch = leaderEpoch };
        if (AliveNode(broker, leaderId, listenerName) is { } node && !response.NodeEndpoints.Exists(e => e.NodeId == leaderId))
            response.NodeEndpoints.Add(new FetchResponse.NodeEndpoint { NodeId = leaderId, Host = node.Host, Port = node.Port, Rack = node.Rack });
    }

    /// <summary>Produce v10+: the leader hint of every partition answered NOT_LEADER_OR_FOLLOWER, also
    /// those failed while waiting for acks=all (upstream's response callback sees all of them).</summary>
    internal static void Produce(KafkaBroker broker, ProduceResponse response, short version, string? listenerName = null)
    {
        if (version < 10) return;
        foreach (var tr in response.Responses)
            foreach (var pr in tr.PartitionResponses)
            {
                if (pr.ErrorCode != (short)ErrorCode.NotLeaderOrFollower) continue;
                var (leaderId, leaderEpoch) = broker.Replicas.GetPartition(tr.Name, pr.Index) is { } partition
                    ? CurrentLeader(broker, partition) : (-1, -1);
                pr.CurrentLeader = new ProduceResponse.LeaderIdAndEpoch { LeaderId = leaderId, LeaderEpoch = leaderEpoch };
                if (AliveNode(broker, leaderId, listenerName) is { } node && !response.NodeEndpoints.Exists(e => e.NodeId == leaderId))
                    response.NodeEndpoints.Add(new ProduceResponse.NodeEndpoint { NodeId = leaderId, Host = node.Host, Port = node.Port, Rack = node.Rack });
            }
    }
}
