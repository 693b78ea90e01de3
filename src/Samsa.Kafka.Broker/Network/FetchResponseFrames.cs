using System.Buffers;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Network;

/// <summary>
/// Turns a Fetch response whose partitions carry <see cref="FileRecords"/> (segment ranges, see
/// <c>IPartitionLog.ReadFileRecords</c>) into frame parts — upstream's FetchResponse send, a
/// MultiRecordsSend of byte buffers and FileRecords: the encoded response up to a partition's
/// <c>records</c> length prefix, then that partition's file range, then the next encoded bytes,
/// and so on. The generated writer produces the bytes around the ranges
/// (<see cref="KafkaWriter(Span{byte}, List{SplicedRecords})"/>), so the response layout stays
/// in FetchResponse.json; the length prefixes it writes are the ranges' lengths (int32 before
/// the flexible v12, unsigned varint of length + 1 from v12), so the frame is exactly what the
/// copying writer would have produced.
/// </summary>
internal static class FetchResponseFrames
{
    /// <summary>Total bytes of file-backed records in <paramref name="response"/> (0: nothing to splice).</summary>
    public static long FileBytes(FetchResponse response)
    {
        long total = 0;
        foreach (var topic in response.Responses)
        {
            foreach (var partition in topic.Partitions)
            {
                if (partition.Records is { } records && FileRecords.TryGet(records, out _, out _, out int length))
                    total += length;
            }
        }
        return total;
    }

    /// <summary>
    /// Encodes header + response around the file ranges into one pooled buffer (returned for the
    /// caller to give back to <see cref="ArrayPool{T}.Shared"/>) and lists the frame's parts.
    /// </summary>
    public static List<FramePart> Build(ResponseHeader header, short headerVersion, FetchResponse response, short version, long fileBytes, out byte[] buffer)
    {
        long total = (long)header.Size(headerVersion) + response.Size(version);
        int inline = checked((int)(total - fileBytes));
        buffer = ArrayPool<byte>.Shared.Rent(inline);
        var spliced = new List<SplicedRecords>();
        var writer = new KafkaWriter(buffer.AsSpan(0, inline), spliced);
        header.Write(ref writer, headerVersion);
        response.Write(ref writer, version);
        if (writer.Position != inline)
            throw new InvalidOperationException($"Fetch v{version} encoded {writer.Position} bytes around its file ranges, expected {inline}");

        var parts = new List<FramePart>(2 * spliced.Count + 1);
        int from = 0;
        foreach (var s in spliced)
        {
            if (s.Position > from) parts.Add(new FramePart(buffer.AsMemory(from, s.Position - from)));
            parts.Add(new FramePart(s.Records.File, s.Records.Position + s.Start, s.Length));
            from = s.Position;
        }
        if (inline > from) parts.Add(new FramePart(buffer.AsMemory(from, inline - from)));
        return parts;
    }

    /// <summary>Ends the file leases of every partition's records (after the send, or when the response is dropped).</summary>
    public static void Release(FetchResponse? response)
    {
        if (response is null) return;
        foreach (var topic in response.Responses)
        {
            foreach (var partition in topic.Partitions)
            {
                if (partition.Records is { } records && FileRecords.TryGet(records, out FileRecords? file, out _, out _))
                    ((IDisposable)file!).Dispose();
            }
        }
    }
}
