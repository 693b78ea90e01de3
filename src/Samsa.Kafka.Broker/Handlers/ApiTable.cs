using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

/// <summary>What a handler sees besides its request: the header, the broker, the connection.</summary>
public sealed class RequestContext
{
    public required RequestHeader Header { get; init; }
    public required KafkaBroker Broker { get; init; }
    /// <summary>Null in handler tests that run without a network.</summary>
    public Samsa.Net.Connection? Connection { get; init; }
    public CancellationToken Cancellation { get; init; }
    /// <summary>The connection's listener, security protocol and principal (a PLAINTEXT,
    /// ANONYMOUS session in handler tests that run without a network).</summary>
    public Security.ConnectionSession Session { get; init; } = Security.ConnectionSession.ForTests();
    public short ApiVersion => Header.RequestApiVersion;
}

/// <summary>A handler returns the response, or null when the protocol sends none (Produce acks=0).</summary>
public delegate ValueTask<IKafkaMessage?> ApiHandler(RequestContext context, IKafkaMessage request);

public sealed record ApiEntry(ApiKey Key, short MinVersion, short MaxVersion, ApiHandler Handler);

/// <summary>
/// The one table of served APIs: the dispatcher routes by it and ApiVersions advertises exactly
/// it, so the broker never advertises what it does not serve. Maximum versions follow what an
/// Apache Kafka 4.2.0 broker advertises (tests/Samsa.Kafka.Broker.Tests ApiTableTests compares them
/// with 4.2's table); minimum versions stay at 0, below 4.0's KIP-896 floors, so older clients keep
/// working.
/// </summary>
public static class ApiTable
{
    public static readonly IReadOnlyList<ApiEntry> Entries =
    [
        Entry<ProduceRequest>(ApiKey.Produce, 0, 13, ProduceHandler.HandleAsync),
        Entry<FetchRequest>(ApiKey.Fetch, 0, 18, FetchHandler.HandleAsync),
        Entry<ListOffsetsRequest>(ApiKey.ListOffsets, 0, 11, ListOffsetsHandler.HandleAsync),
        Entry<MetadataRequest>(ApiKey.Metadata, 0, 13, MetadataHandler.HandleAsync),
        Entry<ApiVersionsRequest>(ApiKey.ApiVersions, 0, 4, ApiVersionsHandler.HandleAsync),
        Entry<CreateTopicsRequest>(ApiKey.CreateTopics, 0, 7, CreateTopicsHandler.HandleAsync),
        Entry<DeleteTopicsRequest>(ApiKey.DeleteTopics, 0, 6, DeleteTopicsHandler.HandleAsync),
        Entry<DeleteRecordsRequest>(ApiKey.DeleteRecords, 0, 2, DeleteRecordsHandler.HandleAsync),
        Entry<OffsetForLeaderEpochRequest>(ApiKey.OffsetForLeaderEpoch, 0, 4, OffsetForLeaderEpochHandler.HandleAsync),
        Entry<DescribeConfigsRequest>(ApiKey.DescribeConfigs, 0, 4, DescribeConfigsHandler.HandleAsync),
        Entry<AlterConfigsRequest>(ApiKey.AlterConfigs, 0, 2, AlterConfigsHandler.HandleAsync),
        Entry<DescribeLogDirsRequest>(ApiKey.DescribeLogDirs, 0, 4, DescribeLogDirsHandler.HandleAsync),
        // Replica moves between log directories (JBOD): Samsa.Kafka.Storage LogManager.Move.cs.
        Entry<AlterReplicaLogDirsRequest>(ApiKey.AlterReplicaLogDirs, 0, 2, AlterReplicaLogDirsHandler.HandleAsync),
        // Finalized feature levels (KIP-584): Features/FeatureStore, the /feature znode.
        Entry<UpdateFeaturesRequest>(ApiKey.UpdateFeatures, 0, 2, UpdateFeaturesHandler.HandleAsync),
        Entry<CreatePartitionsRequest>(ApiKey.CreatePartitions, 0, 3, CreatePartitionsHandler.HandleAsync),
        Entry<IncrementalAlterConfigsRequest>(ApiKey.IncrementalAlterConfigs, 0, 1, IncrementalAlterConfigsHandler.HandleAsync),
        Entry<DescribeClusterRequest>(ApiKey.DescribeCluster, 0, 2, DescribeClusterHandler.HandleAsync),
        // Client quotas: Security/Quotas.
        Entry<DescribeClientQuotasRequest>(ApiKey.DescribeClientQuotas, 0, 1, DescribeClientQuotasHandler.HandleAsync),
        Entry<AlterClientQuotasRequest>(ApiKey.AlterClientQuotas, 0, 1, AlterClientQuotasHandler.HandleAsync),
        // Leadership moves (ZooKeeper-mode controller): Controller/LeaderElections.
        Entry<ControlledShutdownRequest>(ApiKey.ControlledShutdown, 0, 3, ControlledShutdownHandler.HandleAsync),
        Entry<ElectLeadersRequest>(ApiKey.ElectLeaders, 0, 2, ElectLeadersHandler.HandleAsync),
        // Partition reassignment (KIP-455): Controller/PartitionReassignment.
        Entry<AlterPartitionReassignmentsRequest>(ApiKey.AlterPartitionReassignments, 0, 1, AlterPartitionReassignmentsHandler.HandleAsync),
        Entry<ListPartitionReassignmentsRequest>(ApiKey.ListPartitionReassignments, 0, 0, ListPartitionReassignmentsHandler.HandleAsync),
        // Consumer groups (classic protocol) and committed offsets: Groups/GroupCoordinator.
        Entry<OffsetCommitRequest>(ApiKey.OffsetCommit, 0, 10, OffsetCommitHandler.HandleAsync),
        Entry<OffsetFetchRequest>(ApiKey.OffsetFetch, 0, 10, OffsetFetchHandler.HandleAsync),
        Entry<FindCoordinatorRequest>(ApiKey.FindCoordinator, 0, 6, FindCoordinatorHandler.HandleAsync),
        Entry<JoinGroupRequest>(ApiKey.JoinGroup, 0, 9, JoinGroupHandler.HandleAsync),
        Entry<HeartbeatRequest>(ApiKey.Heartbeat, 0, 4, HeartbeatHandler.HandleAsync),
        Entry<LeaveGroupRequest>(ApiKey.LeaveGroup, 0, 5, LeaveGroupHandler.HandleAsync),
        Entry<SyncGroupRequest>(ApiKey.SyncGroup, 0, 5, SyncGroupHandler.HandleAsync),
        Entry<DescribeGroupsRequest>(ApiKey.DescribeGroups, 0, 6, DescribeGroupsHandler.HandleAsync),
        Entry<ListGroupsRequest>(ApiKey.ListGroups, 0, 5, ListGroupsHandler.HandleAsync),
        Entry<DeleteGroupsRequest>(ApiKey.DeleteGroups, 0, 2, DeleteGroupsHandler.HandleAsync),
        Entry<OffsetDeleteRequest>(ApiKey.OffsetDelete, 0, 0, OffsetDeleteHandler.HandleAsync),
        // KIP-848 consumer groups (next-generation protocol): Groups/GroupCoordinator.Consumer.cs.
        Entry<ConsumerGroupHeartbeatRequest>(ApiKey.ConsumerGroupHeartbeat, 0, 1, ConsumerGroupHeartbeatHandler.HandleAsync),
        Entry<ConsumerGroupDescribeRequest>(ApiKey.ConsumerGroupDescribe, 0, 1, ConsumerGroupDescribeHandler.HandleAsync),
        Entry<StreamsGroupHeartbeatRequest>(ApiKey.StreamsGroupHeartbeat, 0, 0, StreamsGroupHeartbeatHandler.HandleAsync),
        Entry<StreamsGroupDescribeRequest>(ApiKey.StreamsGroupDescribe, 0, 0, StreamsGroupDescribeHandler.HandleAsync),
        // Idempotent and transactional producers: Transactions/TransactionCoordinator.
        Entry<InitProducerIdRequest>(ApiKey.InitProducerId, 0, 5, InitProducerIdHandler.HandleAsync),
        Entry<AddPartitionsToTxnRequest>(ApiKey.AddPartitionsToTxn, 0, 5, AddPartitionsToTxnHandler.HandleAsync),
        Entry<AddOffsetsToTxnRequest>(ApiKey.AddOffsetsToTxn, 0, 4, AddOffsetsToTxnHandler.HandleAsync),
        Entry<EndTxnRequest>(ApiKey.EndTxn, 0, 5, EndTxnHandler.HandleAsync),
        Entry<WriteTxnMarkersRequest>(ApiKey.WriteTxnMarkers, 0, 2, WriteTxnMarkersHandler.HandleAsync),
        Entry<TxnOffsetCommitRequest>(ApiKey.TxnOffsetCommit, 0, 5, TxnOffsetCommitHandler.HandleAsync),
        Entry<DescribeProducersRequest>(ApiKey.DescribeProducers, 0, 0, DescribeProducersHandler.HandleAsync),
        Entry<DescribeTransactionsRequest>(ApiKey.DescribeTransactions, 0, 0, DescribeTransactionsHandler.HandleAsync),
        Entry<ListTransactionsRequest>(ApiKey.ListTransactions, 0, 2, ListTransactionsHandler.HandleAsync),
        // ACLs (upstream AclAuthorizer in ZooKeeper mode): Security/Acl.
        Entry<DescribeAclsRequest>(ApiKey.DescribeAcls, 0, 3, DescribeAclsHandler.HandleAsync),
        Entry<CreateAclsRequest>(ApiKey.CreateAcls, 0, 3, CreateAclsHandler.HandleAsync),
        Entry<DeleteAclsRequest>(ApiKey.DeleteAcls, 0, 3, DeleteAclsHandler.HandleAsync),
        // SASL and SCRAM credentials: Security/Sasl.
        Entry<SaslHandshakeRequest>(ApiKey.SaslHandshake, 0, 1, SaslHandshakeHandler.HandleAsync),
        Entry<SaslAuthenticateRequest>(ApiKey.SaslAuthenticate, 0, 2, SaslAuthenticateHandler.HandleAsync),
        Entry<DescribeUserScramCredentialsRequest>(ApiKey.DescribeUserScramCredentials, 0, 0, DescribeUserScramCredentialsHandler.HandleAsync),
        Entry<AlterUserScramCredentialsRequest>(ApiKey.AlterUserScramCredentials, 0, 0, AlterUserScramCredentialsHandler.HandleAsync),
        // Delegation tokens (KIP-48, KIP-373): Security/Tokens.
        Entry<CreateDelegationTokenRequest>(ApiKey.CreateDelegationToken, 0, 3, CreateDelegationTokenHandler.HandleAsync),
        Entry<RenewDelegationTokenRequest>(ApiKey.RenewDelegationToken, 0, 2, RenewDelegationTokenHandler.HandleAsync),
        Entry<ExpireDelegationTokenRequest>(ApiKey.ExpireDelegationToken, 0, 2, ExpireDelegationTokenHandler.HandleAsync),
        Entry<DescribeDelegationTokenRequest>(ApiKey.DescribeDelegationToken, 0, 3, DescribeDelegationTokenHandler.HandleAsync),
        // Client telemetry (KIP-714), config resource listing (KIP-1142) and paged topic describe
        // (KIP-966): Telemetry/, issue #16 area E.
        Entry<GetTelemetrySubscriptionsRequest>(ApiKey.GetTelemetrySubscriptions, 0, 0, GetTelemetrySubscriptionsHandler.HandleAsync),
        Entry<PushTelemetryRequest>(ApiKey.PushTelemetry, 0, 0, PushTelemetryHandler.HandleAsync),
        Entry<ListConfigResourcesRequest>(ApiKey.ListConfigResources, 0, 1, ListConfigResourcesHandler.HandleAsync),
        Entry<DescribeTopicPartitionsRequest>(ApiKey.DescribeTopicPartitions, 0, 0, DescribeTopicPartitionsHandler.HandleAsync),
        // Share groups (KIP-932, Kafka 4.2 versions): Groups/Share.
        Entry<ShareGroupHeartbeatRequest>(ApiKey.ShareGroupHeartbeat, 1, 1, ShareGroupHeartbeatHandler.HandleAsync),
        Entry<ShareGroupDescribeRequest>(ApiKey.ShareGroupDescribe, 1, 1, ShareGroupDescribeHandler.HandleAsync),
        Entry<ShareFetchRequest>(ApiKey.ShareFetch, 1, 2, ShareFetchHandler.HandleAsync),
        Entry<ShareAcknowledgeRequest>(ApiKey.ShareAcknowledge, 1, 2, ShareAcknowledgeHandler.HandleAsync),
        Entry<DescribeShareGroupOffsetsRequest>(ApiKey.DescribeShareGroupOffsets, 0, 1, DescribeShareGroupOffsetsHandler.HandleAsync),
        Entry<AlterShareGroupOffsetsRequest>(ApiKey.AlterShareGroupOffsets, 0, 0, AlterShareGroupOffsetsHandler.HandleAsync),
        Entry<DeleteShareGroupOffsetsRequest>(ApiKey.DeleteShareGroupOffsets, 0, 0, DeleteShareGroupOffsetsHandler.HandleAsync),
        // The share coordinator (broker to broker; Groups/Share/ShareCoordinator, __share_group_state).
        Entry<InitializeShareGroupStateRequest>(ApiKey.InitializeShareGroupState, 0, 0, ShareGroupStateHandlers.InitializeAsync),
        Entry<ReadShareGroupStateRequest>(ApiKey.ReadShareGroupState, 0, 0, ShareGroupStateHandlers.ReadAsync),
        Entry<WriteShareGroupStateRequest>(ApiKey.WriteShareGroupState, 0, 1, ShareGroupStateHandlers.WriteAsync),
        Entry<DeleteShareGroupStateRequest>(ApiKey.DeleteShareGroupState, 0, 0, ShareGroupStateHandlers.DeleteAsync),
        Entry<ReadShareGroupStateSummaryRequest>(ApiKey.ReadShareGroupStateSummary, 0, 1, ShareGroupStateHandlers.SummaryAsync),
    ];

    private static readonly Dictionary<short, ApiEntry> ByKey = Entries.ToDictionary(e => (short)e.Key);

    /// <summary>The served ranges in the shared protocol table (which also checks every range lies
    /// inside what the generated schema can decode).</summary>
    public static readonly SupportedApis Supported = BuildSupported();

    private static SupportedApis BuildSupported()
    {
        var supported = new SupportedApis();
        foreach (var e in Entries) supported.Register(e.Key, e.MinVersion, e.MaxVersion);
        return supported;
    }

    public static ApiEntry? Find(short apiKey) => ByKey.GetValueOrDefault(apiKey);

    public static bool Serves(short apiKey, short version) => Supported.IsServed(apiKey, version);

    private static ApiEntry Entry<T>(ApiKey key, short min, short max, Func<RequestContext, T, ValueTask<IKafkaMessage?>> handler)
        where T : class, IKafkaMessage =>
        new(key, min, max, (ctx, req) => handler(ctx, (T)req));
}
