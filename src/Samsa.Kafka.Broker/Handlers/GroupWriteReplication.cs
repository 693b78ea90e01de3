// Group writes answered once replicated (issue #16).
//
// Upstream's group coordinator (CoordinatorRuntime.scheduleWriteOperation) appends a request's
// records to its __consumer_offsets partition and completes the response future only when the
// partition's high watermark passed them, within offsets.commit.timeout.ms; a failed or timed-out
// write becomes the request's error through CoordinatorOperationExceptionHelper.handleOperationException
// (NOT_LEADER_OR_FOLLOWER / KAFKA_STORAGE_ERROR -> NOT_COORDINATOR; UNKNOWN_TOPIC_OR_PARTITION /
// NOT_ENOUGH_REPLICAS / REQUEST_TIMED_OUT -> COORDINATOR_NOT_AVAILABLE), each API putting it where
// its error response has it. A request whose coordinator call appended nothing (a steady-state
// heartbeat) is answered at once. The waits run after the coordinator call returned, so no group
// lock is held meanwhile.
// Difference from upstream: a write that is not replicated is not rolled back in memory (upstream
// reverts the coordinator's state to the last committed offset).
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

internal static class GroupWriteReplication
{
    /// <summary>Runs a coordinator call in a <see cref="GroupWriteScope"/> (the call must not await).</summary>
    public static T Run<T>(Func<T> call, out GroupWriteScope writes)
    {
        writes = GroupWriteScope.Begin();
        try { return call(); }
        finally { writes.Dispose(); }
    }

    /// <summary>The response as it is when nothing was written; otherwise once the writes are
    /// replicated, or <paramref name="failed"/>'s answer for the replication error.</summary>
    public static ValueTask<IKafkaMessage?> AnswerAsync(RequestContext context, GroupWriteScope writes, IKafkaMessage response,
        Func<ErrorCode, IKafkaMessage> failed)
    {
        if (!writes.Wrote) return ValueTask.FromResult<IKafkaMessage?>(response);
        return WaitAsync(context, writes, response, failed);

        static async ValueTask<IKafkaMessage?> WaitAsync(RequestContext context, GroupWriteScope writes, IKafkaMessage response, Func<ErrorCode, IKafkaMessage> failed)
        {
            var error = await context.Broker.AwaitGroupWritesAsync(writes, context.Cancellation);
            return error == ErrorCode.None ? response : failed(error);
        }
    }

    /// <summary>Waits until what is in the group's offsets partition now is replicated: for answers
    /// that show state another request wrote (a follower's SyncGroup gets the assignment its
    /// leader's SyncGroup stored) and writes made after an await (share group deletion).</summary>
    public static Task<ErrorCode> AwaitPendingAsync(RequestContext context, string groupId) =>
        context.Broker.AwaitInternalWriteAsync(Cluster.TopicName.GroupMetadataTopic,
            context.Broker.Groups.Coordinator.PartitionFor(groupId), context.Cancellation);
}
