// The feature table of ApiVersions v3+ (KIP-584): SupportedFeatures, FinalizedFeatures and
// FinalizedFeaturesEpoch, as a Kafka 4.2 broker fills them for the features clients look at.
//
// Upstream (ApiVersionsResponse.maybeFilterSupportedFeatureKeys / createFinalizedFeatureKeys,
// Kafka 4.x): a supported range whose MinVersion is 0 is left out of responses below v4
// (KAFKA-17492: older clients fail to read it; ApiVersions v4 says the client copes); a finalized
// level of 0 is left out at every version, and a finalized feature is sent with
// MinVersionLevel = MaxVersionLevel = its level.
// A ZooKeeper-mode Samsa cluster has no KRaft metadata log, so metadata.version, kraft.version,
// eligible.leader.replicas.version are not advertised; the levels below are
// fixed by this build rather than raised with kafka-features.sh (UpdateFeatures is not served).
namespace Samsa.Kafka.Broker.Handlers;

public static class BrokerFeatures
{
    /// <summary>One feature: the range this build can run and the level it runs at (0 = off).</summary>
    public sealed record Feature(string Name, short MinSupported, short MaxSupported, short FinalizedLevel);

    // Edit the levels here. Upstream meanings (server-common GroupVersion, TransactionVersion,
    // ShareVersion): group.version 1 = the KIP-848 consumer group protocol is enabled;
    // transaction.version 1 = flexible transaction records, 2 = KIP-890 part 2 (Produce v12+ adds
    // partitions implicitly, EndTxn v5 bumps the epoch); share.version 1 = KIP-932 share groups.
    public static readonly IReadOnlyList<Feature> All =
    [
        new("group.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        new("share.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        // streams.version 1 = KIP-1071 streams groups (StreamsGroupHeartbeat/Describe); Kafka 4.2's
        // production level, finalized by default on a new 4.2 cluster.
        new("streams.version", MinSupported: 0, MaxSupported: 1, FinalizedLevel: 1),
        new("transaction.version", MinSupported: 0, MaxSupported: 2, FinalizedLevel: 2),
    ];

    /// <summary>FinalizedFeaturesEpoch. Upstream sends the epoch of the metadata that finalized the
    /// levels (a KRaft offset, or the ZooKeeper /feature znode's version); the levels here change
    /// only with the build, so the epoch is a constant: any value >= 0 says "known".</summary>
    public const long FinalizedEpoch = 0;

    public static short FinalizedLevel(string name) =>
        All.FirstOrDefault(f => f.Name == name)?.FinalizedLevel ?? 0;

    /// <summary>Fills the three tagged fields for a response of the given version.</summary>
    public static void Fill(Samsa.Kafka.Protocol.Messages.ApiVersionsResponse response, short version)
    {
        if (version < 3) return; // the fields are tagged fields of the flexible versions only
        foreach (var f in All)
        {
            if (version >= 4 || f.MinSupported != 0)
                response.SupportedFeatures.Add(new() { Name = f.Name, MinVersion = f.MinSupported, MaxVersion = f.MaxSupported });
            if (f.FinalizedLevel != 0)
                response.FinalizedFeatures.Add(new() { Name = f.Name, MinVersionLevel = f.FinalizedLevel, MaxVersionLevel = f.FinalizedLevel });
        }
        response.FinalizedFeaturesEpoch = FinalizedEpoch;
    }
}
