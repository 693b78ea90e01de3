using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;
using static Samsa.Kafka.Protocol.Tests.GoldenBytesTests;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Bad lengths and counts fail with <see cref="KafkaProtocolException"/> before any allocation
/// sized by them; nothing else (IndexOutOfRange, OutOfMemory) escapes the decoders.
/// </summary>
public class HostileInputTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static KafkaProtocolException Fails(string hex, ReaderAction action)
    {
        var bytes = Hex(hex);
        return CatchRead(() => { var r = new KafkaReader(bytes); action(ref r); });
    }

    private delegate void ReaderAction(ref KafkaReader reader);

    [Fact]
    public void NegativeStringLengthOtherThanNullIsRejected()
    {
        Assert.Equal(ProtocolErrorKind.NegativeLength, Fails("FFFE 61", (ref KafkaReader r) => r.ReadNullableString(false)).Kind);
        Assert.Equal(ProtocolErrorKind.Malformed, Fails("FFFF", (ref KafkaReader r) => r.ReadString(false)).Kind);
        Assert.Equal(ProtocolErrorKind.Malformed, Fails("00", (ref KafkaReader r) => r.ReadString(true)).Kind);
    }

    [Fact]
    public void LengthsBeyondTheInputAreRejected()
    {
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, Fails("7FFF 6161", (ref KafkaReader r) => r.ReadString(false)).Kind);
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, Fails("7FFFFFFF 00", (ref KafkaReader r) => r.ReadBytes(false)).Kind);
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, Fails("7FFFFFFF 00", (ref KafkaReader r) => r.ReadNullableRecords(false)).Kind);
        // Compact length 0xFFFFFFFF - 1: a varint that decodes to the largest uint.
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, Fails("FFFFFFFF0F 00", (ref KafkaReader r) => r.ReadBytes(true)).Kind);
        Assert.Equal(ProtocolErrorKind.NegativeLength, Fails("80000000", (ref KafkaReader r) => r.ReadBytes(false)).Kind);
    }

    [Fact]
    public void ArrayCountLargerThanTheFrameIsRejectedBeforeAllocating()
    {
        // A billion topics claimed in a 12-byte Metadata v1 body.
        var e = Fails("3B9ACA00 0001 61 0001 62", (ref KafkaReader r) => MetadataRequest.Read(ref r, 1));
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, e.Kind);
        // Compact form, flexible Metadata v9.
        e = Fails("FFFFFFFF07 00", (ref KafkaReader r) => MetadataRequest.Read(ref r, 9));
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, e.Kind);
        Assert.Equal(ProtocolErrorKind.NegativeLength, Fails("FFFFFFF0", (ref KafkaReader r) => r.ReadArrayCount(false)).Kind);
    }

    [Fact]
    public void TaggedFieldSectionsAreBoundsChecked()
    {
        // Tagged field claiming 100 bytes with 2 left.
        var e = Fails("01 01 01 07 64 AABB", (ref KafkaReader r) => ApiVersionsRequest.Read(ref r, 3));
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, e.Kind);
        // A count of tagged fields that cannot fit the remaining input.
        e = Fails("01 01 FFFFFF7F", (ref KafkaReader r) => ApiVersionsRequest.Read(ref r, 3));
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, e.Kind);
        // A known tag whose value overruns its declared size: FinalizedFeaturesEpoch needs 8 bytes but the tag says 2.
        e = Fails("0000 01 00000000 01 01 02 0000", (ref KafkaReader r) => ApiVersionsResponse.Read(ref r, 3));
        Assert.Equal(ProtocolErrorKind.Truncated, e.Kind);
    }

    [Fact]
    public void OverlongVarIntsAreMalformed()
    {
        Assert.Equal(ProtocolErrorKind.Malformed, Fails("FFFFFFFFFF01", (ref KafkaReader r) => r.ReadUnsignedVarInt()).Kind);
        Assert.Equal(ProtocolErrorKind.Truncated, Fails("FF", (ref KafkaReader r) => r.ReadVarInt()).Kind);
    }

    [Fact]
    public void InvalidUtf8IsMalformed()
    {
        Assert.Equal(ProtocolErrorKind.Malformed, Fails("0002 C328", (ref KafkaReader r) => r.ReadString(false)).Kind);
        Assert.Equal(ProtocolErrorKind.Malformed, Fails("03 FFFE", (ref KafkaReader r) => r.ReadString(true)).Kind);
    }

    [Fact]
    public void RecordsAreAZeroCopySliceOfTheFrame()
    {
        var frame = Hex("00000003 0A0B0C FF");
        var memory = new ReadOnlyMemory<byte>(frame);
        var reader = new KafkaReader(memory);
        var records = reader.ReadRecords(false);
        Assert.Equal(3, records.Length);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(records, out var segment));
        Assert.Same(frame, segment.Array);
        Assert.Equal(4, segment.Offset);
        Assert.Equal(1, reader.Remaining);
    }

    [Fact]
    public void RandomGarbageNeverEscapesAsAnotherException()
    {
        // Random bytes fed to every request decoder at every version: each either decodes or
        // throws KafkaProtocolException; any other exception type fails the test.
        var rng = new Random(4242);
        foreach (var key in ApiMessages.All)
        {
            if (!ApiMessages.TryGetVersionRange((short)key, out var lo, out var hi)) continue;
            for (short v = lo; v <= hi; v++)
            {
                for (int i = 0; i < 30; i++)
                {
                    var bytes = new byte[rng.Next(0, 64)];
                    rng.NextBytes(bytes);
                    try
                    {
                        var r = new KafkaReader(bytes);
                        ApiMessages.ReadRequest(key, ref r, v);
                    }
                    catch (KafkaProtocolException)
                    {
                    }
                }
            }
        }
    }
}
