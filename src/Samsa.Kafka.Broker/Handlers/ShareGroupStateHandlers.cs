// The share coordinator's APIs (KIP-932; broker to broker, upstream KafkaApis
// handle{Initialize,Read,Write,Delete}ShareGroupState / handleReadShareGroupStateSummary):
// InitializeShareGroupState (83) v0, ReadShareGroupState (84) v0, WriteShareGroupState (85) v0-1,
// DeleteShareGroupState (86) v0, ReadShareGroupStateSummary (87) v0-1.
//
// Behaviour (ShareCoordinatorService / ShareCoordinatorShard): each (group, topic id, partition)
// is answered once the records it wrote are committed (high watermark; REQUEST_TIMED_OUT or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND otherwise); each (group, topic id, partition)
// is answered by the coordinator that leads its __share_group_state partition
// (Groups/Share/ShareCoordinator); elsewhere NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS while
// the partition is being replayed. Write fences an older state epoch (FENCED_STATE_EPOCH) or
// leader epoch (FENCED_LEADER_EPOCH); Read fences an older leader epoch and records a newer one.
// Write runs must be well formed (first <= last, states 0 / 2 / 4) and cover at most 2^20 offsets
// in all (INVALID_REQUEST). A share-partition never initialized reads and summarizes as start offset -1, state epoch 0
// (Read: no runs; Summary v1: delivery-complete count -1). A request without a group id is
// answered with no results, as upstream. Authorization: CLUSTER_ACTION on the cluster (upstream
// authorizeClusterOperation); denied, every partition answers CLUSTER_AUTHORIZATION_FAILED.
// Differs from upstream: a share-partition read before it was initialized answers NONE with
// start offset -1 (the share-partition leader then initializes it itself, where upstream's group
// coordinator initializes it on assignment).
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ShareGroupStateHandlers
{
    // A share-partition leader expands the runs it reads into per-offset state, so a write may cover
    // at most this many offsets (the in-flight window is group.share.partition.max.record.locks,
    // 2000 by default); more is INVALID_REQUEST rather than a leader that cannot load the state.
    private const long MaxStateOffsets = 1 << 20;

    private static ErrorCode Authorize(RequestContext context) =>
        Authz.Cluster(context, AclOperation.ClusterAction) ? ErrorCode.None : ErrorCode.ClusterAuthorizationFailed;

    private static string? MessageOf(ErrorCode e) => e == ErrorCode.None ? null : e switch
    {
        ErrorCode.NotCoordinator => "This is not the correct coordinator.",
        ErrorCode.CoordinatorLoadInProgress => "The coordinator is loading and hence can't process requests.",
        ErrorCode.CoordinatorNotAvailable => "The coordinator is not available.",
        ErrorCode.FencedStateEpoch => "The share coordinator rejected the request because the share-group state epoch did not match.",
        ErrorCode.FencedLeaderEpoch => "The leader epoch in the request is older than the epoch on the broker.",
        ErrorCode.ClusterAuthorizationFailed => "Cluster authorization failed.",
        _ => e.ToString(),
    };

    public static ValueTask<IKafkaMessage?> InitializeAsync(RequestContext context, InitializeShareGroupStateRequest request)
    {
        var response = new InitializeShareGroupStateResponse();
        if (string.IsNullOrEmpty(request.GroupId)) return Done(response);
        var auth = Authorize(context);
        var c = context.Broker.ShareCoordinator.Coordinator;
        foreach (var t in request.Topics)
        {
            var rt = new InitializeShareGroupStateResponse.InitializeStateResult { TopicId = t.TopicId };
            response.Results.Add(rt);
            foreach (var p in t.Partitions)
            {
                var e = auth != ErrorCode.None ? auth : c.Initialize(new SharePartitionKey(request.GroupId, t.TopicId, p.Partition), p.StateEpoch, p.StartOffset);
                rt.Partitions.Add(new() { Partition = p.Partition, ErrorCode = (short)e, ErrorMessage = MessageOf(e) });
            }
        }
        return Committed(context, request.GroupId, response, response.Results.SelectMany(t => t.Partitions.Select(p =>
            (t.TopicId, p.Partition, (Func<short>)(() => p.ErrorCode), (Action<ErrorCode>)(e => { p.ErrorCode = (short)e; p.ErrorMessage = MessageOf(e); })))));
    }

    public static ValueTask<IKafkaMessage?> ReadAsync(RequestContext context, ReadShareGroupStateRequest request)
    {
        var response = new ReadShareGroupStateResponse();
        if (string.IsNullOrEmpty(request.GroupId)) return Done(response);
        var auth = Authorize(context);
        var c = context.Broker.ShareCoordinator.Coordinator;
        foreach (var t in request.Topics)
        {
            var rt = new ReadShareGroupStateResponse.ReadStateResult { TopicId = t.TopicId };
            response.Results.Add(rt);
            foreach (var p in t.Partitions)
            {
                var (e, s) = auth != ErrorCode.None ? (auth, null) : c.Read(new SharePartitionKey(request.GroupId, t.TopicId, p.Partition), p.LeaderEpoch);
                var rp = new ReadShareGroupStateResponse.PartitionResult
                {
                    Partition = p.Partition, ErrorCode = (short)e, ErrorMessage = MessageOf(e),
                    StateEpoch = s?.StateEpoch ?? 0, StartOffset = s?.StartOffset ?? -1,
                };
                if (s is not null)
                    rp.StateBatches = s.Batches.Select(b => new ReadShareGroupStateResponse.StateBatch
                    {
                        FirstOffset = b.FirstOffset, LastOffset = b.LastOffset, DeliveryState = (sbyte)b.State, DeliveryCount = b.DeliveryCount,
                    }).ToList();
                rt.Partitions.Add(rp);
            }
        }
        return Done(response);
    }

    public static ValueTask<IKafkaMessage?> WriteAsync(RequestContext context, WriteShareGroupStateRequest request)
    {
        var response = new WriteShareGroupStateResponse();
        if (string.IsNullOrEmpty(request.GroupId)) return Done(response);
        var auth = Authorize(context);
        var c = context.Broker.ShareCoordinator.Coordinator;
        foreach (var t in request.Topics)
        {
            var rt = new WriteShareGroupStateResponse.WriteStateResult { TopicId = t.TopicId };
            response.Results.Add(rt);
            foreach (var p in t.Partitions)
            {
                ErrorCode e = auth;
                if (e == ErrorCode.None)
                {
                    var batches = p.StateBatches.Select(b => new StateBatch(b.FirstOffset, b.LastOffset, (RecordState)b.DeliveryState, b.DeliveryCount)).ToList();
                    e = batches.Any(b => b.FirstOffset < 0 || b.LastOffset < b.FirstOffset
                            || b.State is not (RecordState.Available or RecordState.Acknowledged or RecordState.Archived))
                        || batches.Sum(b => Math.Min(b.LastOffset - b.FirstOffset, MaxStateOffsets) + 1) > MaxStateOffsets
                        ? ErrorCode.InvalidRequest
                        : c.Write(new SharePartitionKey(request.GroupId, t.TopicId, p.Partition), p.StateEpoch, p.LeaderEpoch, p.StartOffset,
                            context.ApiVersion >= 1 ? p.DeliveryCompleteCount : -1, batches);
                }
                rt.Partitions.Add(new() { Partition = p.Partition, ErrorCode = (short)e, ErrorMessage = MessageOf(e) });
            }
        }
        return Committed(context, request.GroupId, response, response.Results.SelectMany(t => t.Partitions.Select(p =>
            (t.TopicId, p.Partition, (Func<short>)(() => p.ErrorCode), (Action<ErrorCode>)(e => { p.ErrorCode = (short)e; p.ErrorMessage = MessageOf(e); })))));
    }

    public static ValueTask<IKafkaMessage?> DeleteAsync(RequestContext context, DeleteShareGroupStateRequest request)
    {
        var response = new DeleteShareGroupStateResponse();
        if (string.IsNullOrEmpty(request.GroupId)) return Done(response);
        var auth = Authorize(context);
        var c = context.Broker.ShareCoordinator.Coordinator;
        foreach (var t in request.Topics)
        {
            var rt = new DeleteShareGroupStateResponse.DeleteStateResult { TopicId = t.TopicId };
            response.Results.Add(rt);
            foreach (var p in t.Partitions)
            {
                var e = auth != ErrorCode.None ? auth : c.Delete(new SharePartitionKey(request.GroupId, t.TopicId, p.Partition));
                rt.Partitions.Add(new() { Partition = p.Partition, ErrorCode = (short)e, ErrorMessage = MessageOf(e) });
            }
        }
        return Committed(context, request.GroupId, response, response.Results.SelectMany(t => t.Partitions.Select(p =>
            (t.TopicId, p.Partition, (Func<short>)(() => p.ErrorCode), (Action<ErrorCode>)(e => { p.ErrorCode = (short)e; p.ErrorMessage = MessageOf(e); })))));
    }

    public static ValueTask<IKafkaMessage?> SummaryAsync(RequestContext context, ReadShareGroupStateSummaryRequest request)
    {
        var response = new ReadShareGroupStateSummaryResponse();
        if (string.IsNullOrEmpty(request.GroupId)) return Done(response);
        var auth = Authorize(context);
        var c = context.Broker.ShareCoordinator.Coordinator;
        foreach (var t in request.Topics)
        {
            var rt = new ReadShareGroupStateSummaryResponse.ReadStateSummaryResult { TopicId = t.TopicId };
            response.Results.Add(rt);
            foreach (var p in t.Partitions)
            {
                var (e, s) = auth != ErrorCode.None ? (auth, null) : c.Summary(new SharePartitionKey(request.GroupId, t.TopicId, p.Partition));
                rt.Partitions.Add(new()
                {
                    Partition = p.Partition, ErrorCode = (short)e, ErrorMessage = MessageOf(e),
                    StateEpoch = s?.StateEpoch ?? 0, LeaderEpoch = s is null ? 0 : Math.Max(0, s.LeaderEpoch), StartOffset = s?.StartOffset ?? -1,
                    DeliveryCompleteCount = s?.DeliveryCompleteCount ?? -1,
                });
            }
        }
        return Done(response);
    }

    // Every partition answered NONE waits for its state partition's commit before the response.
    private static async ValueTask<IKafkaMessage?> Committed(RequestContext context, string groupId, IKafkaMessage response,
        IEnumerable<(Guid TopicId, int Partition, Func<short> Get, Action<ErrorCode> Set)> entries)
    {
        foreach (var (topicId, partition, get, set) in entries.ToList())
        {
            if (get() != 0) continue;
            var e = await context.Broker.ShareCoordinator.AwaitCommittedAsync(new SharePartitionKey(groupId, topicId, partition), context.Cancellation);
            if (e != ErrorCode.None) set(e);
        }
        return response;
    }

    private static ValueTask<IKafkaMessage?> Done(IKafkaMessage m) => ValueTask.FromResult<IKafkaMessage?>(m);
}
