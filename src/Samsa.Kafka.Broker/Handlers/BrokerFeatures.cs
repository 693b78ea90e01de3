// The feature table of ApiVersions v3+ (KIP-584): SupportedFeatures, FinalizedFeatures and
// FinalizedFeaturesEpoch, as a Kafka 4.2 broker fills them for the features clients look at.
//
// Upstream (ApiVersionsResponse.maybeFilterSupportedFeatureKeys / createFinalizedFeatureKeys,
// Kafka 4.x): a supported range whose MinVersion is 0 is left out of responses below v4
// (KAFKA-17492: older clients fail to read it; ApiVersions v4 says the client copes); a finalized
// level of 0 is left out at every version, and a finalized feature is sent with
// MinVersionLevel = MaxVersionLevel = its level.
// A ZooKeeper-mode Samsa cluster has no KRaft metadata log, so metadata.version, kraft.version
// and eligible.leader.replicas.version are not advertised. The supported ranges
// are this build's; the finalized levels and their epoch are the broker's FeatureStore (the
// /feature znode in ZooKeeper mode, changed with UpdateFeatures / kafka-features.sh); the
// FinalizedLevel column below is what a new cluster starts with.
namespace Samsa.Kafka.Broker.Handlers;

public static class BrokerFeatures
{
    /// <summary>One feature: the range this build can run and the level it runs at (0 = off).</summary>
    public sealed record Feature(string Name, short MinSupported, short MaxSupported, short FinalizedLevel);

    // The default levels of a new cluster (written to /feature by the first controller). Upstream meanings (server-common GroupVersion, TransactionVersion,
    // ShareVersion): group.version 1 = the KIP-848 consumer group protocol is enabled;
    // transaction.version 1 = flexible transaction records, 2 = KIP-890 part 2 (Produce v12+ adds
    // partitions implicitly, EndTxn v5 bumps the epoch); share.version 1 = KIP-932 share groups.
    // What a level changes on the broker: group.version 0 refuses ConsumerGroupHeartbeat/Describe;
    // share.version 0 refuses the share-group heartbeat/describe, ShareFetch and ShareAcknowledge;
    // streams.version 0 the streams-group APIs (all UNSUPPORTED_VERSION, as upstream KafkaApis).
    // transaction.version refuses nothing — requests are handled by their own version, clients pick
    // the version from the level — it sets the __transaction_state value version and the version
    // of coordinator-started aborts (Transactions/TransactionCoordinator.TransactionVersionLevel).
    public static readonly IReadOnlyList<Feature> All =
    [
        new("group.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        new("share.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        // streams.version 1 = KIP-1071 streams groups (StreamsGroupHeartbeat/Describe); Kafka 4.2's
        // production level, finalized by default on a new 4.2 cluster.
        new("streams.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        new("transaction.version", MinSupported: 0, MaxSupported: 2, FinalizedLevel: 2),
    ];

    /// <summary>Fills the three tagged fields for a response of the given version.</summary>
    public static void Fill(Samsa.Kafka.Protocol.Messages.ApiVersionsResponse response, short version, Features.FeatureStore.Snapshot finalized)
    {
        if (version < 3) return; // the fields are tagged fields of the flexible versions only
        foreach (var f in All)
        {
            if (version >= 4 || f.MinSupported != 0)
                response.SupportedFeatures.Add(new() { Name = f.Name, MinVersion = f.MinSupported, MaxVersion = f.MaxSupported });
        }
        foreach (var (name, level) in finalized.Levels.OrderBy(l => l.Key, StringComparer.Ordinal))
            if (level > 0)
                response.FinalizedFeatures.Add(new() { Name = name, MinVersionLevel = level, MaxVersionLevel = level });
        response.FinalizedFeaturesEpoch = finalized.Epoch;
    }
}
