using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Samsa.Kafka.Storage;

/// <summary>
/// The fixed 61-byte header of a v2 RecordBatch (KIP-98), read and stamped in place. The storage
/// layer needs only these fields; record-level decoding lives in Samsa.Kafka.Protocol.Records.
/// Layout: baseOffset int64 @0, batchLength int32 @8, partitionLeaderEpoch int32 @12, magic int8 @16,
/// crc uint32 @17 (CRC32C of attributes..end), attributes int16 @21, lastOffsetDelta int32 @23,
/// baseTimestamp int64 @27, maxTimestamp int64 @35, producerId int64 @43, producerEpoch int16 @51,
/// baseSequence int32 @53, recordsCount int32 @57.
/// </summary>
public readonly ref struct BatchHeader
{
    public const int Size = 61;
    /// <summary>baseOffset + batchLength: the part of every message-set entry that frames it.</summary>
    public const int LogOverhead = 12;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const byte CurrentMagic = 2;

    private readonly ReadOnlySpan<byte> _bytes;

    public BatchHeader(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size)
        {
            throw new InvalidDataException($"record batch header needs {Size} bytes, {bytes.Length} available");
        }
        _bytes = bytes;
    }

    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes);
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(_bytes[8..]);
    /// <summary>Whole batch size in the log: batchLength counts from partitionLeaderEpoch on.</summary>
    public int SizeInBytes => BatchLength + LogOverhead;
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(_bytes[12..]);
    public byte Magic => _bytes[16];
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(_bytes[CrcOffset..]);
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(_bytes[AttributesOffset..]);
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(_bytes[23..]);
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[27..]);
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[35..]);
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(_bytes[43..]);
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(_bytes[51..]);
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(_bytes[53..]);
    public int RecordsCount => BinaryPrimitives.ReadInt32BigEndian(_bytes[57..]);

    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long NextOffset => LastOffset + 1;
    /// <summary>Attributes bits 0-2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.</summary>
    public int CompressionType => Attributes & 0x7;
    /// <summary>Attribute bit 3: timestamps are LogAppendTime.</summary>
    public bool IsLogAppendTime => (Attributes & 0x8) != 0;
    /// <summary>Attribute bit 4 (KIP-98).</summary>
    public bool IsTransactional => (Attributes & 0x10) != 0;
    /// <summary>Attribute bit 5 (KIP-98): commit/abort markers.</summary>
    public bool IsControl => (Attributes & 0x20) != 0;
    /// <summary>Attribute bit 6 (KIP-534): baseTimestamp holds the delete horizon.</summary>
    public bool HasDeleteHorizon => (Attributes & 0x40) != 0;
    public bool HasProducerId => ProducerId >= 0;

    /// <summary>Recomputes the CRC32C over attributes..end and compares it with the stored one.</summary>
    public static bool IsCrcValid(ReadOnlySpan<byte> batch)
    {
        var header = new BatchHeader(batch);
        return header.Crc == Crc32C.Compute(batch[AttributesOffset..header.SizeInBytes]);
    }

    public static void SetBaseOffset(Span<byte> batch, long baseOffset) => BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);

    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) => BinaryPrimitives.WriteInt32BigEndian(batch[12..], epoch);

    /// <summary>
    /// Stamps LogAppendTime (message.timestamp.type=LogAppendTime): sets the timestamp-type bit and
    /// maxTimestamp, then recomputes the CRC, which covers both.
    /// </summary>
    public static void SetLogAppendTime(Span<byte> batch, long timestampMs)
    {
        var header = new BatchHeader(batch);
        int size = header.SizeInBytes;
        short attributes = (short)(header.Attributes | 0x8);
        BinaryPrimitives.WriteInt16BigEndian(batch[AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt64BigEndian(batch[35..], timestampMs);
        BinaryPrimitives.WriteUInt32BigEndian(batch[CrcOffset..], Crc32C.Compute(batch[AttributesOffset..size]));
    }
}

/// <summary>CRC32C (Castagnoli), the checksum of v2 record batches, using the CPU's crc32 instruction via BitOperations.</summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(uint.MaxValue, data));

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong word in words)
        {
            crc = BitOperations.Crc32C(crc, BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word));
        }
        foreach (byte b in data[(words.Length * 8)..])
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }

    public static uint Finish(uint crc) => ~crc;
}
