using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>
/// The ApiVersions answer against Apache Kafka 4.2.0's client-facing table: every API a 4.2 broker
/// advertises must be served up to 4.2's maximum, or be listed below as not served yet / served
/// below 4.2 (so the gap is explicit), and nothing outside 4.2's table is served except the
/// ZooKeeper-mode extras. When an API is raised or added, move it between the lists.
/// </summary>
public class Kafka42ApiTableTests
{
    /// <summary>Kafka 4.2.0 broker maxima (its schemas' validVersions minus latestVersionUnstable
    /// versions). Source per row: the upstream change that reached that version (JIRA, commit,
    /// KIP) as recorded in franz-go's kversion (pkg/kversion/requests.go, b40/b41/b42) and the
    /// schemas' own version comments; "3.x" rows were already at that maximum in that release.</summary>
    public static readonly IReadOnlyDictionary<ApiKey, short> Kafka42Max = new Dictionary<ApiKey, short>
    {
        [ApiKey.Produce] = 13,                       // 4.1: KAFKA-10551 6f783f85362, KIP-516 (topic ids)
        [ApiKey.Fetch] = 18,                         // 4.1: KAFKA-14145 742b327025f, KIP-1166
        [ApiKey.ListOffsets] = 11,                   // 4.2: KAFKA-17108 8d93d1096c2, KIP-1023
        [ApiKey.Metadata] = 13,                      // 4.0: KAFKA-17885 52d2fa5c8b3, KIP-1102
        [ApiKey.OffsetCommit] = 10,                  // 4.2: KAFKA-19186 9599143bfd9, KIP-848 (topic ids)
        [ApiKey.OffsetFetch] = 10,                   // 4.2: KAFKA-19186 9599143bfd9, KIP-848
        [ApiKey.FindCoordinator] = 6,                // 3.9: KIP-932 share coordinator key type
        [ApiKey.JoinGroup] = 9,                      // 3.2: KIP-800
        [ApiKey.Heartbeat] = 4,                      // 2.4: KIP-482 flexible
        [ApiKey.LeaveGroup] = 5,                     // 3.2: KIP-800
        [ApiKey.SyncGroup] = 5,                      // 2.5: KIP-559
        [ApiKey.DescribeGroups] = 6,                 // 4.0: KAFKA-17550 e7d986e48c2, KIP-1043
        [ApiKey.ListGroups] = 5,                     // 3.8: KIP-848 type filter
        [ApiKey.SaslHandshake] = 1,                  // 1.0: KIP-152
        [ApiKey.ApiVersions] = 4,                    // 3.9: KAFKA-17011 (features with MinVersion 0)
        [ApiKey.CreateTopics] = 7,                   // 2.8: KIP-516 topic ids in the answer
        [ApiKey.DeleteTopics] = 6,                   // 2.8: KIP-516
        [ApiKey.DeleteRecords] = 2,                  // 2.4: flexible
        [ApiKey.InitProducerId] = 5,                 // 3.8: KAFKA-14562, KIP-890
        [ApiKey.OffsetForLeaderEpoch] = 4,           // 2.4: flexible
        [ApiKey.AddPartitionsToTxn] = 5,             // 3.8: KIP-890
        [ApiKey.AddOffsetsToTxn] = 4,                // 3.8: KIP-890
        [ApiKey.EndTxn] = 5,                         // 4.0: KAFKA-14562 ede0c94aaae, KIP-890 part 2
        [ApiKey.WriteTxnMarkers] = 2,                // 4.2: KAFKA-19446 faad21fcb9a, KIP-1228
        [ApiKey.TxnOffsetCommit] = 5,                // 4.0: KAFKA-14563 755adf8a566, KIP-890 part 2
        [ApiKey.DescribeAcls] = 3,                   // 3.3: KIP-827 flexible fix
        [ApiKey.CreateAcls] = 3,                     // 3.3
        [ApiKey.DeleteAcls] = 3,                     // 3.3
        [ApiKey.DescribeConfigs] = 4,                // 2.4: flexible
        [ApiKey.AlterConfigs] = 2,                   // 2.4: flexible
        [(ApiKey)34] = 2,                            // AlterReplicaLogDirs, 2.4: flexible
        [ApiKey.DescribeLogDirs] = 4,                // 3.3: KIP-827 total/usable bytes
        [ApiKey.SaslAuthenticate] = 2,               // 2.4: flexible
        [ApiKey.CreatePartitions] = 3,               // 2.8
        [ApiKey.CreateDelegationToken] = 3,          // 3.6: KIP-373 owner
        [ApiKey.RenewDelegationToken] = 2,           // 2.4: flexible
        [ApiKey.ExpireDelegationToken] = 2,          // 2.4: flexible
        [ApiKey.DescribeDelegationToken] = 3,        // 3.6: KIP-373
        [ApiKey.DeleteGroups] = 2,                   // 2.4: flexible
        [ApiKey.ElectLeaders] = 2,                   // 2.4: KIP-460
        [ApiKey.IncrementalAlterConfigs] = 1,        // 2.4: flexible
        [ApiKey.AlterPartitionReassignments] = 1,    // 4.1: KAFKA-14121 cbd72cc216e, KIP-860
        [ApiKey.ListPartitionReassignments] = 0,     // 2.4: KIP-455
        [ApiKey.OffsetDelete] = 0,                   // 2.4: KIP-496
        [ApiKey.DescribeClientQuotas] = 1,           // 2.8: flexible
        [ApiKey.AlterClientQuotas] = 1,              // 2.8: flexible
        [ApiKey.DescribeUserScramCredentials] = 0,   // 2.7: KIP-554
        [ApiKey.AlterUserScramCredentials] = 0,      // 2.7: KIP-554
        [(ApiKey)55] = 2,                            // DescribeQuorum, 3.9: KIP-853
        [(ApiKey)57] = 2,                            // UpdateFeatures, 4.0: KIP-1022
        [ApiKey.DescribeCluster] = 2,                // 4.0: KIP-1073 IncludeFencedBrokers
        [ApiKey.DescribeProducers] = 0,              // 3.0: KIP-664
        [(ApiKey)64] = 0,                            // UnregisterBroker, 3.3: KIP-500
        [ApiKey.DescribeTransactions] = 0,           // 3.0: KIP-664
        [ApiKey.ListTransactions] = 2,               // 4.1: KAFKA-19073 0c1fbf3aebb, KIP-1152
        [ApiKey.ConsumerGroupHeartbeat] = 1,         // 4.0: KAFKA-17592 ab0df20489a, KIP-848 / KIP-1082
        [ApiKey.ConsumerGroupDescribe] = 1,          // 4.0: KAFKA-17750 fe88232b07c
        [(ApiKey)71] = 0,                            // GetTelemetrySubscriptions, 3.7: KIP-714
        [(ApiKey)72] = 0,                            // PushTelemetry, 3.7: KIP-714
        [(ApiKey)74] = 1,                            // ListConfigResources, 4.1: KAFKA-18904 c26b09c6092, KIP-1142
        [(ApiKey)75] = 0,                            // DescribeTopicPartitions, 3.8: KAFKA-15585 7e5ef9b509a, KIP-966
        [(ApiKey)76] = 1,                            // ShareGroupHeartbeat, 4.1: KAFKA-16713 66147d5de7c, KIP-932
        [(ApiKey)77] = 1,                            // ShareGroupDescribe, 4.1: KIP-932
        [(ApiKey)78] = 2,                            // ShareFetch, 4.2: KAFKA-19814 05c9322ba9c, KIP-1206/KIP-1222
        [(ApiKey)79] = 2,                            // ShareAcknowledge, 4.2: KAFKA-19814 05c9322ba9c, KIP-1222
        [(ApiKey)80] = 1,                            // AddRaftVoter, 4.2: KAFKA-19400 93447d5b883, KIP-1186
        [(ApiKey)81] = 0,                            // RemoveRaftVoter, 3.9: KIP-853
        [(ApiKey)83] = 0,                            // InitializeShareGroupState, 4.1: KAFKA-16950 fecbfb81332
        [(ApiKey)84] = 0,                            // ReadShareGroupState, 4.1
        [(ApiKey)85] = 1,                            // WriteShareGroupState, 4.2: KAFKA-19797 b900f2fe5a0, KIP-1226
        [(ApiKey)86] = 0,                            // DeleteShareGroupState, 4.1
        [(ApiKey)87] = 1,                            // ReadShareGroupStateSummary, 4.2: KAFKA-19799 5571821240, KIP-1226
        [(ApiKey)88] = 0,                            // StreamsGroupHeartbeat, 4.2: KAFKA-19869 497072a5644, KIP-1071
        [(ApiKey)89] = 0,                            // StreamsGroupDescribe, 4.2: KAFKA-19869 497072a5644, KIP-1071
        [(ApiKey)90] = 1,                            // DescribeShareGroupOffsets, 4.2: KAFKA-19800 1146f97770c, KIP-1226
        [(ApiKey)91] = 0,                            // AlterShareGroupOffsets, 4.1: KAFKA-16717 6a6b80215d8
        [(ApiKey)92] = 0,                            // DeleteShareGroupOffsets, 4.1: KAFKA-16718 63229a768ce
    };

    /// <summary>4.2 APIs Samsa does not serve (yet). KRaft-only ones stay here for good.</summary>
    public static readonly IReadOnlySet<short> NotServed = new HashSet<short>
    {
        55, 64, 80, 81,         // DescribeQuorum, UnregisterBroker, Add/RemoveRaftVoter: KRaft only
    };

    /// <summary>4.2 APIs Samsa serves, but below 4.2's maximum: key → Samsa's maximum.</summary>
    public static readonly IReadOnlyDictionary<short, short> ServedBelowKafka42 = new Dictionary<short, short>
    {
        // none: OffsetCommit/OffsetFetch v10 (topic ids, KIP-848) are served since session 6
    };

    /// <summary>APIs whose lowest served version is not 0: share groups start at v1, KIP-932's
    /// production protocol (v0 was 4.0's early-access form).</summary>
    public static readonly IReadOnlyDictionary<short, short> MinAboveZero = new Dictionary<short, short>
    {
        [76] = 1, [77] = 1, [78] = 1, [79] = 1,
    };

    /// <summary>Served although a 4.2 broker does not advertise it: ZooKeeper-mode inter-broker APIs.</summary>
    public static readonly IReadOnlySet<short> ZooKeeperModeExtras = new HashSet<short>
    {
        7,                      // ControlledShutdown (removed with ZooKeeper mode in 4.0)
    };

    [Fact]
    public async Task ApiVersionsAdvertisesKafka42MaximaExceptTheListedGaps()
    {
        await using var f = new HandlerFixture();
        var r = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 4);
        Assert.Equal(0, r!.ErrorCode);
        var served = r.ApiKeys.ToDictionary(k => k.ApiKey);
        var problems = new List<string>();
        foreach (var (key, max) in Kafka42Max)
        {
            short k = (short)key;
            if (NotServed.Contains(k))
            {
                if (served.ContainsKey(k)) problems.Add($"{key} ({k}) is served: take it off NotServed");
                continue;
            }
            if (!served.TryGetValue(k, out var got)) { problems.Add($"{key} ({k}) is not served"); continue; }
            short expected = ServedBelowKafka42.TryGetValue(k, out var below) ? below : max;
            if (got.MaxVersion != expected) problems.Add($"{key} ({k}) max {got.MaxVersion}, expected {expected} (4.2: {max})");
            short expectedMin = MinAboveZero.TryGetValue(k, out var lo) ? lo : (short)0;
            if (got.MinVersion != expectedMin) problems.Add($"{key} ({k}) min {got.MinVersion}, expected {expectedMin}");
        }
        foreach (var k in served.Keys)
            if (!Kafka42Max.ContainsKey((ApiKey)k) && !ZooKeeperModeExtras.Contains(k))
                problems.Add($"{(ApiKey)k} ({k}) is served but not in Kafka 4.2's table");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        // The lists stay consistent with the 4.2 table.
        Assert.All(NotServed, k => Assert.True(Kafka42Max.ContainsKey((ApiKey)k)));
        Assert.All(ServedBelowKafka42, kv => Assert.True(kv.Value < Kafka42Max[(ApiKey)kv.Key]));
    }

    [Fact]
    public async Task ApiVersionsV4CarriesTheFeatureTableAndV3LeavesOutRangesFromZero()
    {
        await using var f = new HandlerFixture();
        var v4 = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 4);
        var supported = v4!.SupportedFeatures.ToDictionary(s => s.Name);
        Assert.Equal(["group.version", "share.version", "streams.version", "transaction.version"], supported.Keys.Order());
        Assert.All(supported.Values, s => Assert.Equal(0, s.MinVersion));
        Assert.True(supported["transaction.version"].MaxVersion >= 1);
        var finalized = v4.FinalizedFeatures.ToDictionary(s => s.Name);
        // A fresh broker reports the build's default levels (Features/FeatureStore).
        foreach (var feature in Samsa.Kafka.Broker.Handlers.BrokerFeatures.All)
        {
            if (feature.FinalizedLevel == 0) { Assert.False(finalized.ContainsKey(feature.Name)); continue; }
            Assert.Equal((feature.FinalizedLevel, feature.FinalizedLevel), (finalized[feature.Name].MinVersionLevel, finalized[feature.Name].MaxVersionLevel));
            Assert.InRange(feature.FinalizedLevel, supported[feature.Name].MinVersion, supported[feature.Name].MaxVersion);
        }
        Assert.True(v4.FinalizedFeaturesEpoch >= 0);

        // v3 (librdkafka, KAFKA-17492): supported ranges starting at 0 are left out, finalized stay.
        var v3 = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 3);
        Assert.Empty(v3!.SupportedFeatures);
        Assert.Equal(finalized.Keys.Order(), v3.FinalizedFeatures.Select(x => x.Name).Order());
        // v0-v2 have no feature fields at all.
        var v2 = await f.Send<ApiVersionsResponse>(new ApiVersionsRequest(), 2);
        Assert.Empty(v2!.FinalizedFeatures);
        Assert.Equal(-1, v2.FinalizedFeaturesEpoch);
    }
}
