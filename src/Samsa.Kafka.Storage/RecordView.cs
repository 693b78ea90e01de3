namespace Samsa.Kafka.Storage;

/// <summary>
/// One record of an uncompressed v2 batch, as slices of the batch bytes (KIP-98 record layout:
/// length varint, attributes int8, timestampDelta varlong, offsetDelta varint, key, value, headers).
/// Used by timestamp lookup and compaction; every length is checked against the batch.
/// </summary>
public readonly record struct RecordView(long Offset, long Timestamp, int KeyStart, int KeyLength, int ValueStart, int ValueLength, int Start, int Size)
{
    /// <summary>-1 length means null (a null value is a tombstone).</summary>
    public bool HasKey => KeyLength >= 0;
    public bool IsTombstone => ValueLength < 0;

    public static IEnumerable<RecordView> Enumerate(byte[] batch)
    {
        var header = new BatchHeader(batch);
        if ((header.Attributes & 0x7) != 0)
        {
            throw new InvalidDataException("compressed batch records are not readable here");
        }
        int end = header.SizeInBytes;
        if (end > batch.Length)
        {
            throw new InvalidDataException("batch shorter than its length");
        }
        long baseOffset = header.BaseOffset;
        long baseTimestamp = header.BaseTimestamp;
        int count = header.RecordsCount;
        int position = BatchHeader.Size;
        for (int i = 0; i < count; i++)
        {
            RecordView record = Parse(batch, position, end, baseOffset, baseTimestamp);
            yield return record;
            position = record.Start + record.Size;
        }
    }

    private static RecordView Parse(byte[] batch, int position, int end, long baseOffset, long baseTimestamp)
    {
        int start = position;
        ReadOnlySpan<byte> span = batch.AsSpan(0, end);
        position += Samsa.Kafka.Protocol.Primitives.VarInt.ReadSigned(span[position..], out int length);
        if (length < 0 || position + length > end)
        {
            throw new InvalidDataException($"record length {length} outside the batch");
        }
        int recordEnd = position + length;
        ReadOnlySpan<byte> body = span[..recordEnd];
        position += 1; // attributes
        position += Samsa.Kafka.Protocol.Primitives.VarInt.ReadSigned(body[position..], out long timestampDelta);
        position += Samsa.Kafka.Protocol.Primitives.VarInt.ReadSigned(body[position..], out int offsetDelta);
        position += Samsa.Kafka.Protocol.Primitives.VarInt.ReadSigned(body[position..], out int keyLength);
        int keyStart = position;
        if (keyLength > 0)
        {
            if (position + keyLength > recordEnd) throw new InvalidDataException("record key outside the record");
            position += keyLength;
        }
        position += Samsa.Kafka.Protocol.Primitives.VarInt.ReadSigned(body[position..], out int valueLength);
        int valueStart = position;
        if (valueLength > 0)
        {
            if (position + valueLength > recordEnd) throw new InvalidDataException("record value outside the record");
        }
        return new RecordView(baseOffset + offsetDelta, baseTimestamp + timestampDelta, keyStart, keyLength, valueStart, valueLength, start, recordEnd - start);
    }
}
