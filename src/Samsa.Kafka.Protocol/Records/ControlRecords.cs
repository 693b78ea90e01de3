using System.Buffers.Binary;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Records;

/// <summary>Type ids of control records (the key of every record in a control batch).</summary>
public enum ControlRecordType : short
{
    Unknown = -1,
    Abort = 0,
    Commit = 1,
    // KRaft quorum control records; a ZooKeeper-mode broker never writes them but may need to skip them.
    LeaderChange = 2,
    SnapshotHeader = 3,
    SnapshotFooter = 4,
    KRaftVersion = 5,
    KRaftVoters = 6,
}

/// <summary>
/// Control records (KIP-98): the key is <c>version int16 (0) | type int16</c>; for transaction markers
/// (ABORT / COMMIT) the value is <c>version int16 (0) | coordinatorEpoch int32</c>. Markers are written
/// by the broker in a batch with the control and transactional bits set, one record, no sequence.
/// </summary>
public static class ControlRecords
{
    public const short CurrentKeyVersion = 0;
    public const int KeySize = 4;
    public const short CurrentEndTxnMarkerVersion = 0;
    public const int EndTxnMarkerValueSize = 6;

    /// <summary>Parses a control record key. Higher key versions are read as version 0, as Kafka does.</summary>
    public static ControlRecordType ParseType(ReadOnlySpan<byte> key)
    {
        if (key.Length < KeySize)
            throw new KafkaProtocolException(ProtocolErrorKind.Truncated, $"control record key has {key.Length} bytes, needs {KeySize}");
        short version = BinaryPrimitives.ReadInt16BigEndian(key);
        if (version < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"control record key version {version} is invalid");
        short type = BinaryPrimitives.ReadInt16BigEndian(key[2..]);
        return type is >= 0 and <= 6 ? (ControlRecordType)type : ControlRecordType.Unknown;
    }

    public static void WriteKey(Span<byte> destination, ControlRecordType type)
    {
        if (type == ControlRecordType.Unknown) throw new ArgumentException("cannot write an UNKNOWN control record", nameof(type));
        BinaryPrimitives.WriteInt16BigEndian(destination, CurrentKeyVersion);
        BinaryPrimitives.WriteInt16BigEndian(destination[2..], (short)type);
    }

    /// <summary>Reads an end-transaction marker value; returns the coordinator epoch.</summary>
    public static int ParseEndTxnMarkerCoordinatorEpoch(ReadOnlySpan<byte> value)
    {
        if (value.Length < EndTxnMarkerValueSize)
            throw new KafkaProtocolException(ProtocolErrorKind.Truncated, $"end transaction marker has {value.Length} bytes, needs {EndTxnMarkerValueSize}");
        short version = BinaryPrimitives.ReadInt16BigEndian(value);
        if (version < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"end transaction marker version {version} is invalid");
        return BinaryPrimitives.ReadInt32BigEndian(value[2..]);
    }

    public static void WriteEndTxnMarkerValue(Span<byte> destination, int coordinatorEpoch)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, CurrentEndTxnMarkerVersion);
        BinaryPrimitives.WriteInt32BigEndian(destination[2..], coordinatorEpoch);
    }

    /// <summary>
    /// Builds the control batch the broker appends for WriteTxnMarkers: transactional + control,
    /// the producer's id and epoch, no sequence, one record (key = type, value = coordinator epoch)
    /// stamped with <paramref name="timestamp"/>.
    /// </summary>
    public static byte[] BuildEndTxnMarkerBatch(ControlRecordType type, long producerId, short producerEpoch, int coordinatorEpoch,
        long timestamp, long baseOffset = 0, int partitionLeaderEpoch = RecordBatch.NoPartitionLeaderEpoch)
    {
        if (type is not (ControlRecordType.Abort or ControlRecordType.Commit))
            throw new ArgumentException("end transaction markers are ABORT or COMMIT", nameof(type));
        Span<byte> key = stackalloc byte[KeySize];
        WriteKey(key, type);
        Span<byte> value = stackalloc byte[EndTxnMarkerValueSize];
        WriteEndTxnMarkerValue(value, coordinatorEpoch);
        using var builder = new RecordBatchBuilder(CompressionType.None, baseOffset)
        {
            ProducerId = producerId,
            ProducerEpoch = producerEpoch,
            IsTransactional = true,
            IsControl = true,
            PartitionLeaderEpoch = partitionLeaderEpoch,
        };
        builder.AppendCore(0, timestamp, key, false, value, false, 0, default);
        return builder.Build();
    }
}
