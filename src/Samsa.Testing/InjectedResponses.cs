using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Testing;

/// <summary>
/// Responses that carry an injected error code where the broker itself would put it: per partition
/// for the partition APIs (every partition the request names), per topic for Metadata, per group or
/// request for the group APIs, as upstream's AbstractRequest.getErrorResponse builds them. The
/// generated response types have no generic "set every error" accessor, so the APIs are listed here;
/// any other API is refused when the fault is set up (NotSupportedException), never answered wrongly.
/// </summary>
public static class InjectedResponses
{
    /// <summary>The APIs whose requests can be failed with an injected error code.</summary>
    public static IReadOnlyList<ApiKey> Supported { get; } =
    [
        ApiKey.Produce, ApiKey.Fetch, ApiKey.ListOffsets, ApiKey.Metadata, ApiKey.OffsetCommit, ApiKey.OffsetFetch,
        ApiKey.FindCoordinator, ApiKey.JoinGroup, ApiKey.Heartbeat, ApiKey.LeaveGroup, ApiKey.SyncGroup, ApiKey.InitProducerId,
    ];

    internal static void EnsureSupported(ApiKey api, ErrorCode error)
    {
        if (!Supported.Contains(api))
            throw new NotSupportedException($"injecting an error into {api} responses is not supported; supported: {string.Join(", ", Supported)}");
        if (error == ErrorCode.None) throw new ArgumentException("an injected error must not be NONE", nameof(error));
    }

    /// <summary>False for requests whose answer has no place for an error: Produce with acks=0 (no
    /// response at all), Metadata for all topics, a Fetch or OffsetFetch naming no partition.</summary>
    internal static bool CanCarry(IKafkaMessage request) => request switch
    {
        ProduceRequest p => p.Acks != 0 && p.TopicData.Count > 0,
        MetadataRequest m => m.Topics is { Count: > 0 },
        FetchRequest f => f.Topics.Any(t => t.Partitions.Count > 0),
        _ => true,
    };

    /// <summary>A Metadata fault: the broker's own answer (brokers, controller, cluster id) with every
    /// topic in error and no partitions, as a broker answers LEADER_NOT_AVAILABLE while a topic is
    /// being created. Not upstream's MetadataRequest.getErrorResponse, which lists no brokers: no
    /// broker sends that to a client, and librdkafka forgets every broker such an answer leaves out.</summary>
    internal static IKafkaMessage IntoMetadata(IKafkaMessage? handled, ErrorCode error)
    {
        if (handled is not MetadataResponse md)
            throw new InvalidOperationException($"the broker answered Metadata with {handled?.GetType().Name ?? "nothing"}");
        foreach (var t in md.Topics)
        {
            t.ErrorCode = (short)error;
            t.Partitions.Clear();
        }
        return md;
    }

    internal static IKafkaMessage For(IKafkaMessage request, short version, ErrorCode error)
    {
        short e = (short)error;
        switch (request)
        {
            case ProduceRequest p:
                var produce = new ProduceResponse();
                foreach (var t in p.TopicData)
                {
                    var tr = new ProduceResponse.TopicProduceResponse { Name = t.Name, TopicId = t.TopicId };
                    foreach (var pd in t.PartitionData)
                        tr.PartitionResponses.Add(new ProduceResponse.PartitionProduceResponse { Index = pd.Index, ErrorCode = e, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 });
                    produce.Responses.Add(tr);
                }
                return produce;
            case FetchRequest f:
                return new FetchResponse
                {
                    SessionId = 0,
                    Responses = f.Topics.Select(t => new FetchResponse.FetchableTopicResponse
                    {
                        Topic = t.Topic,
                        TopicId = t.TopicId,
                        Partitions = t.Partitions.Select(p => new FetchResponse.PartitionData
                        {
                            PartitionIndex = p.Partition, ErrorCode = e, HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1,
                            Records = ReadOnlyMemory<byte>.Empty,
                        }).ToList(),
                    }).ToList(),
                };
            case ListOffsetsRequest l:
                var lo = new ListOffsetsResponse();
                foreach (var t in l.Topics)
                {
                    var tr = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
                    foreach (var p in t.Partitions)
                        tr.Partitions.Add(new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex, ErrorCode = e, Timestamp = -1, Offset = -1, LeaderEpoch = -1 });
                    lo.Topics.Add(tr);
                }
                return lo;
            case OffsetCommitRequest oc:
                var commit = new OffsetCommitResponse();
                foreach (var t in oc.Topics)
                {
                    var tr = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
                    foreach (var p in t.Partitions)
                        tr.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = e });
                    commit.Topics.Add(tr);
                }
                return commit;
            case OffsetFetchRequest of:
                var fetched = new OffsetFetchResponse();
                if (version >= 8)
                {
                    foreach (var g in of.Groups)
                        fetched.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = e });
                }
                else if (version >= 2)
                {
                    fetched.ErrorCode = e;
                }
                else
                {
                    // v0-1 have no request-level error: each named partition carries it.
                    foreach (var t in of.Topics ?? [])
                    {
                        var tr = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = t.Name };
                        foreach (var i in t.PartitionIndexes)
                            tr.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition { PartitionIndex = i, CommittedOffset = -1, Metadata = "", ErrorCode = e });
                        fetched.Topics.Add(tr);
                    }
                }
                return fetched;
            case FindCoordinatorRequest fc:
                var coordinator = new FindCoordinatorResponse();
                if (version < 4)
                {
                    coordinator.ErrorCode = e; coordinator.NodeId = -1; coordinator.Host = ""; coordinator.Port = -1;
                }
                else
                {
                    foreach (var key in fc.CoordinatorKeys)
                        coordinator.Coordinators.Add(new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1, ErrorCode = e });
                }
                return coordinator;
            case JoinGroupRequest:
                return new JoinGroupResponse { ErrorCode = e, GenerationId = -1, ProtocolName = version >= 7 ? null : "", Leader = "", MemberId = "" };
            case SyncGroupRequest:
                return new SyncGroupResponse { ErrorCode = e, Assignment = [] };
            case HeartbeatRequest:
                return new HeartbeatResponse { ErrorCode = e };
            case LeaveGroupRequest:
                return new LeaveGroupResponse { ErrorCode = e };
            case InitProducerIdRequest:
                return new InitProducerIdResponse { ErrorCode = e, ProducerId = -1, ProducerEpoch = -1 };
            default:
                throw new NotSupportedException($"injecting an error into {(ApiKey)request.ApiKey} responses is not supported");
        }
    }
}
