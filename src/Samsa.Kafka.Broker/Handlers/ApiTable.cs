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
    public short ApiVersion => Header.RequestApiVersion;
}

/// <summary>A handler returns the response, or null when the protocol sends none (Produce acks=0).</summary>
public delegate ValueTask<IKafkaMessage?> ApiHandler(RequestContext context, IKafkaMessage request);

public sealed record ApiEntry(ApiKey Key, short MinVersion, short MaxVersion, ApiHandler Handler);

/// <summary>
/// The one table of served APIs: the dispatcher routes by it and ApiVersions advertises exactly
/// it, so the broker never advertises what it does not serve. Version ranges match what Apache
/// Kafka 3.8.0 serves for these APIs (Fetch v4+ only: v0-v3 carry message-format
/// v0/v1 data that this broker does not down-convert).
/// </summary>
public static class ApiTable
{
    public static readonly IReadOnlyList<ApiEntry> Entries =
    [
        Entry<ProduceRequest>(ApiKey.Produce, 0, 11, ProduceHandler.HandleAsync),
        Entry<FetchRequest>(ApiKey.Fetch, 4, 16, FetchHandler.HandleAsync),
        Entry<ListOffsetsRequest>(ApiKey.ListOffsets, 0, 8, ListOffsetsHandler.HandleAsync),
        Entry<MetadataRequest>(ApiKey.Metadata, 0, 12, MetadataHandler.HandleAsync),
        Entry<ApiVersionsRequest>(ApiKey.ApiVersions, 0, 3, ApiVersionsHandler.HandleAsync),
        Entry<CreateTopicsRequest>(ApiKey.CreateTopics, 0, 7, CreateTopicsHandler.HandleAsync),
        Entry<DeleteTopicsRequest>(ApiKey.DeleteTopics, 0, 6, DeleteTopicsHandler.HandleAsync),
        Entry<DeleteRecordsRequest>(ApiKey.DeleteRecords, 0, 2, DeleteRecordsHandler.HandleAsync),
        Entry<OffsetForLeaderEpochRequest>(ApiKey.OffsetForLeaderEpoch, 0, 4, OffsetForLeaderEpochHandler.HandleAsync),
        Entry<DescribeConfigsRequest>(ApiKey.DescribeConfigs, 0, 4, DescribeConfigsHandler.HandleAsync),
        Entry<AlterConfigsRequest>(ApiKey.AlterConfigs, 0, 2, AlterConfigsHandler.HandleAsync),
        Entry<DescribeLogDirsRequest>(ApiKey.DescribeLogDirs, 0, 4, DescribeLogDirsHandler.HandleAsync),
        Entry<CreatePartitionsRequest>(ApiKey.CreatePartitions, 0, 3, CreatePartitionsHandler.HandleAsync),
        Entry<IncrementalAlterConfigsRequest>(ApiKey.IncrementalAlterConfigs, 0, 1, IncrementalAlterConfigsHandler.HandleAsync),
        Entry<DescribeClusterRequest>(ApiKey.DescribeCluster, 0, 1, DescribeClusterHandler.HandleAsync),
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
