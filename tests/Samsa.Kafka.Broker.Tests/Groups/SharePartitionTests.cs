using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Tests.Groups;

/// <summary>The share-partition state machine (KIP-932 SharePartition): acquisition, locks,
/// acknowledgements, delivery limit, start offset and restore.</summary>
public class SharePartitionTests
{
    private static readonly ShareGroupSettings Settings = new() { RecordLockDurationMs = 1000, DeliveryCountLimit = 3, PartitionMaxRecordLocks = 100 };

    private static SharePartition New(long start = 0, ShareGroupSettings? settings = null)
    {
        var sp = new SharePartition("g", Guid.NewGuid(), 0, settings ?? Settings);
        sp.Initialize(start);
        return sp;
    }

    private static LogBatchSpan[] Batches(params (long First, long Last)[] b) => b.Select(x => new LogBatchSpan(x.First, x.Last, false)).ToArray();

    private static readonly sbyte[] Accept = [(sbyte)AcknowledgeType.Accept];
    private static readonly sbyte[] Release = [(sbyte)AcknowledgeType.Release];
    private static readonly sbyte[] Reject = [(sbyte)AcknowledgeType.Reject];

    [Fact]
    public void AcquiredRecordsBelongToOneMemberUntilTheirLockExpires()
    {
        var sp = New();
        var a = sp.Acquire("m1", Batches((0, 4)), maxRecords: 100, recordLimitMode: false, nowMs: 0);
        Assert.Equal([new AcquiredRange(0, 4, 1)], a);
        Assert.Equal(5, sp.EndOffset);
        // Another member reading the same batch gets nothing: every record is locked by m1.
        Assert.Empty(sp.Acquire("m2", Batches((0, 4)), 100, false, 10));
        Assert.Equal(5, sp.NextFetchOffset());

        Assert.False(sp.ReleaseExpired(999));
        Assert.True(sp.ReleaseExpired(1000));
        Assert.Equal(0, sp.NextFetchOffset());
        var again = sp.Acquire("m2", Batches((0, 4)), 100, false, 1000);
        Assert.Equal([new AcquiredRange(0, 4, 2)], again);
        Assert.Equal((RecordState.Acquired, (short)2, "m2"), sp.StateOf(3));
    }

    [Fact]
    public void AcceptReleaseAndRejectMoveRecordsAndTheStartOffset()
    {
        var sp = New(start: 10);
        sp.Acquire("m", Batches((10, 14)), 100, false, 0);
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 10, 11, Accept, 0));
        Assert.Equal(12, sp.StartOffset);
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 12, 12, Release, 0));
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 13, 13, Reject, 0));
        Assert.Equal(12, sp.StartOffset);   // 12 is available again: the start stays
        Assert.Equal((RecordState.Available, (short)1, null), sp.StateOf(12));
        Assert.Equal((RecordState.Archived, (short)1, null), sp.StateOf(13));
        Assert.Equal(12, sp.NextFetchOffset());

        // Redelivery takes only the available record; the rejected one never comes back.
        var again = sp.Acquire("m", Batches((10, 14)), 100, false, 5);
        Assert.Equal([new AcquiredRange(12, 12, 2)], again);
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 12, 12, Accept, 5));
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 14, 14, Accept, 5));
        Assert.Equal(15, sp.StartOffset);
        Assert.Equal(0, sp.InFlightCount);
    }

    [Fact]
    public void PerOffsetTypesAndValidation()
    {
        var sp = New();
        sp.Acquire("m", Batches((0, 3)), 100, false, 0);
        // Wrong type count and unknown types are INVALID_REQUEST, nothing changes.
        Assert.Equal(ErrorCode.InvalidRequest, sp.Acknowledge("m", 0, 3, [1, 1], 0));
        Assert.Equal(ErrorCode.InvalidRequest, sp.Acknowledge("m", 0, 0, [9], 0));
        Assert.Equal(ErrorCode.InvalidRequest, sp.Acknowledge("m", 3, 0, Accept, 0));
        // Another member's records, and offsets never acquired, are INVALID_RECORD_STATE.
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("other", 0, 0, Accept, 0));
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("m", 3, 4, Accept, 0));
        Assert.Equal((RecordState.Acquired, (short)1, "m"), sp.StateOf(3));
        // A huge range costs nothing: only tracked offsets are visited.
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("m", 0, long.MaxValue - 1, Accept, 0));
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("m", 0, long.MaxValue - 1, [(sbyte)AcknowledgeType.Gap], 0));
        Assert.Equal(ErrorCode.InvalidRequest, sp.Acknowledge("m", -5, 1, Accept, 0));

        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 0, 3, [1, 3, 0, 2], 0));
        Assert.Equal(3, sp.StartOffset);   // 0 accepted, 1 rejected, 2 gap: done; 3 released
        Assert.Equal((RecordState.Available, (short)1, null), sp.StateOf(3));
        // Acknowledging twice is INVALID_RECORD_STATE.
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("m", 3, 3, Accept, 0));
    }

    [Fact]
    public void RenewRestartsTheLock()
    {
        var sp = New();
        sp.Acquire("m", Batches((0, 0)), 100, false, 0);
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 0, 0, [(sbyte)AcknowledgeType.Renew], 900));
        Assert.False(sp.ReleaseExpired(1500));
        Assert.Equal((RecordState.Acquired, (short)1, "m"), sp.StateOf(0));
        Assert.True(sp.ReleaseExpired(1900));
        Assert.Equal((RecordState.Available, (short)1, null), sp.StateOf(0));
    }

    [Fact]
    public void DeliveryCountLimitArchivesTheRecord()
    {
        var sp = New();
        for (short delivery = 1; delivery <= 3; delivery++)
        {
            var a = sp.Acquire("m", Batches((0, 1)), 100, false, delivery * 10_000);
            Assert.Equal([new AcquiredRange(0, 1, delivery)], a);
            if (delivery % 2 == 1) Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 0, 1, Release, 0));
            else Assert.True(sp.ReleaseExpired(delivery * 10_000 + 1000));   // lock timeout counts too
        }
        // The third delivery was the last (group.share.delivery.count.limit = 3): archived, the
        // start offset passes it, nothing is left to acquire.
        Assert.Null(sp.StateOf(0));
        Assert.Equal(2, sp.StartOffset);
        Assert.Empty(sp.Acquire("m", Batches((0, 1)), 100, false, 100_000));
        Assert.False(sp.CanAcquire(highWatermark: 2));
    }

    [Fact]
    public void MaxRecordsAndAcquireModes()
    {
        var batchMode = New();
        // Batch-optimized: the batch that crosses max_records is taken whole.
        Assert.Equal([new AcquiredRange(0, 9, 1)], batchMode.Acquire("m", Batches((0, 4), (5, 9), (10, 14)), maxRecords: 6, false, 0));
        var recordMode = New();
        Assert.Equal([new AcquiredRange(0, 5, 1)], recordMode.Acquire("m", Batches((0, 4), (5, 9)), maxRecords: 6, true, 0));
        Assert.Equal(6, recordMode.EndOffset);
        Assert.Equal([new AcquiredRange(6, 9, 1)], recordMode.Acquire("n", Batches((5, 9)), 6, true, 0));
    }

    [Fact]
    public void MaxRecordLocksStopsNewAcquisitions()
    {
        var sp = New(settings: new ShareGroupSettings { PartitionMaxRecordLocks = 4, RecordLockDurationMs = 1000 });
        Assert.Equal([new AcquiredRange(0, 3, 1)], sp.Acquire("m", Batches((0, 9)), 100, false, 0));
        Assert.False(sp.CanAcquire(10));
        Assert.Empty(sp.Acquire("n", Batches((0, 9)), 100, false, 0));
        sp.Acknowledge("m", 0, 1, Accept, 0);
        Assert.True(sp.CanAcquire(10));
        Assert.Equal([new AcquiredRange(4, 5, 1)], sp.Acquire("n", Batches((4, 9)), 100, false, 0));
    }

    [Fact]
    public void ControlBatchesAreNeverDelivered()
    {
        var sp = New();
        var a = sp.Acquire("m", [new LogBatchSpan(0, 1, false), new LogBatchSpan(2, 2, true), new LogBatchSpan(3, 3, false),
            new LogBatchSpan(7, 7, false)], 100, false, 0);
        Assert.Equal([new AcquiredRange(0, 1, 1), new AcquiredRange(3, 3, 1), new AcquiredRange(7, 7, 1)], a);
        // 4-6 do not exist (compacted away): reported as a gap inside a per-offset batch.
        Assert.Equal(ErrorCode.InvalidRecordState, sp.Acknowledge("m", 3, 7, [1, 1, 0, 0, 1], 0));
        Assert.Equal(ErrorCode.None, sp.Acknowledge("m", 3, 7, [1, 0, 0, 0, 1], 0));
        sp.Acknowledge("m", 0, 1, Accept, 0);
        Assert.Equal(8, sp.StartOffset);
    }

    [Fact]
    public void MemberReleaseGivesTheDeliveryAttemptBack()
    {
        var sp = New();
        sp.Acquire("m", Batches((0, 2)), 100, false, 0);
        Assert.True(sp.ReleaseMember("m"));
        Assert.False(sp.ReleaseMember("m"));
        Assert.Equal((RecordState.Available, (short)0, null), sp.StateOf(1));
        // Even at the delivery limit, a record released with its member is not archived.
        for (int i = 0; i < 3; i++)
        {
            sp.Acquire("n", Batches((0, 2)), 100, false, 0);
            if (i < 2) sp.Acknowledge("n", 0, 2, Release, 0);
        }
        Assert.Equal((RecordState.Acquired, (short)3, "n"), sp.StateOf(0));
        Assert.True(sp.ReleaseMember("n"));
        Assert.Equal([new AcquiredRange(0, 2, 3)], sp.Acquire("o", Batches((0, 2)), 100, false, 0));
    }

    [Fact]
    public void SnapshotRestoreKeepsProgressAndReleasesLocks()
    {
        var sp = New(start: 5);
        sp.Acquire("m", Batches((5, 12)), 100, false, 0);
        sp.Acknowledge("m", 5, 6, Accept, 0);      // done
        sp.Acknowledge("m", 8, 8, Reject, 0);      // archived, behind an in-flight record
        sp.Acknowledge("m", 9, 9, Release, 0);     // available, delivered once
        // 7, 10, 11, 12 stay acquired when the broker stops.
        var snapshot = sp.Snapshot();
        Assert.Equal(7, snapshot.StartOffset);

        var restored = new SharePartition("g", sp.TopicId, 0, Settings);
        restored.Restore(snapshot);
        Assert.Equal(7, restored.StartOffset);
        Assert.Equal(13, restored.EndOffset);
        // Records acquired when it was written come back at their count before that acquisition
        // (upstream writes no acquisition); a released one keeps its delivery.
        Assert.Equal((RecordState.Available, (short)0, null), restored.StateOf(7));
        Assert.Equal((RecordState.Archived, (short)1, null), restored.StateOf(8));
        Assert.Equal((RecordState.Available, (short)1, null), restored.StateOf(9));
        var again = restored.Acquire("n", Batches((5, 12), (13, 13)), 100, false, 0);
        Assert.Equal([new AcquiredRange(7, 7, 1), new AcquiredRange(9, 9, 2), new AcquiredRange(10, 13, 1)], again);
    }

    [Fact]
    public void AnAcquisitionDoesNotChangeWhatIsPersisted()
    {
        // Delivered once and released, then acquired again (delivery 2): what is written is the
        // state before that acquisition, so a leader that dies holding it — or dies before a later
        // release of it is written — leaves delivery 1 behind, and the next leader delivers it at 2.
        var sp = New(start: 0);
        sp.Acquire("m", Batches((0, 3)), 100, false, 0);
        sp.Acknowledge("m", 0, 3, Release, 0);
        var beforeAcquisition = sp.Snapshot();
        Assert.Equal([new AcquiredRange(0, 3, 2)], sp.Acquire("n", Batches((0, 3)), 100, false, 0));
        var snapshot = sp.Snapshot();
        Assert.Equal(beforeAcquisition.Batches, snapshot.Batches);
        Assert.Equal([new StateBatch(0, 3, RecordState.Available, 1)], snapshot.Batches);

        var restored = new SharePartition("g", sp.TopicId, 0, Settings);
        restored.Restore(snapshot);
        Assert.Equal([new AcquiredRange(0, 3, 2)], restored.Acquire("o", Batches((0, 3)), 100, false, 0));
    }
}
