using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Replication;

/// <summary>One partition of an acks=all produce request, appended by the leader and waiting for
/// the ISR: done when the high watermark reaches <see cref="RequiredOffset"/> (its last offset + 1).</summary>
public sealed class PendingAck(Partition partition, long requiredOffset, ProduceResponse.PartitionProduceResponse response)
{
    public Partition Partition { get; } = partition;
    public long RequiredOffset { get; } = requiredOffset;
    public ProduceResponse.PartitionProduceResponse Response { get; } = response;
    public bool Done { get; set; }
}

/// <summary>
/// Upstream DelayedProduce: completes when every partition is decided. A partition is decided
/// when the high watermark passed its records (NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
/// ISR shrank below min.insync.replicas meanwhile — upstream checkEnoughReplicasReachOffset), or
/// when this broker stopped leading it (NOT_LEADER_OR_FOLLOWER). What is undecided at the timeout
/// answers REQUEST_TIMED_OUT.
/// </summary>
internal sealed class DelayedProduce(ReplicationManager manager, IReadOnlyList<PendingAck> pending, long delayMs, bool continueOnEventThread = false)
    : DelayedOperation(delayMs, continueOnEventThread)
{
    private readonly object _gate = new();

    public override bool TryComplete()
    {
        lock (_gate)
        {
            // Indexed loops: a foreach over the IReadOnlyList would box its enumerator on every
            // check (each follower fetch that moves the high watermark checks every waiting produce).
            for (int i = 0; i < pending.Count; i++)
            {
                var a = pending[i];
                if (a.Done) continue;
                var p = a.Partition;
                var live = manager.Broker.Replicas.GetPartition(p.Topic.Name, p.Index);
                if (!ReferenceEquals(live, p) || !p.IsLeader)
                {
                    Fail(a, ErrorCode.NotLeaderOrFollower, null);
                    continue;
                }
                if (p.HighWatermark < a.RequiredOffset) continue;
                int isr = p.IsrNodes?.Count ?? 1;
                int minIsr = p.Topic.LogConfig.MinInSyncReplicas;
                if (isr < minIsr)
                    Fail(a, ErrorCode.NotEnoughReplicasAfterAppend,
                        $"The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {minIsr} for partition {p.TopicPartition}");
                else
                    a.Done = true;
            }
            for (int i = 0; i < pending.Count; i++)
                if (!pending[i].Done) return false;
        }
        // Outside the lock: the waiting Produce may continue on this thread (continueOnEventThread).
        return ForceComplete();
    }

    private static void Fail(PendingAck a, ErrorCode error, string? message)
    {
        a.Done = true;
        a.Response.ErrorCode = (short)error;
        a.Response.ErrorMessage = message;
        a.Response.BaseOffset = -1;
        a.Response.LogAppendTimeMs = -1;
    }

    protected override void OnComplete() { }

    protected override void OnExpiration()
    {
        lock (_gate)
            foreach (var a in pending)
                if (!a.Done) Fail(a, ErrorCode.RequestTimedOut, null);
    }
}
