using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>FsCheck properties: every primitive the writer emits reads back identically, in exactly the predicted size.</summary>
public class PrimitivePropertyTests
{
    private static readonly Config Quick = Config.QuickThrowOnFailure.WithMaxTest(500);

    private delegate void WriteAction(ref KafkaWriter writer);

    private static byte[] Encode(int capacity, WriteAction write, out int written)
    {
        var buffer = new byte[capacity];
        var writer = new KafkaWriter(buffer);
        write(ref writer);
        written = writer.Position;
        return buffer.AsSpan(0, written).ToArray();
    }

    [Fact]
    public void VarIntRoundTrips()
    {
        Prop.ForAll<int>(value =>
        {
            var bytes = Encode(5, (ref KafkaWriter w) => w.WriteVarInt(value), out int n);
            var r = new KafkaReader(bytes);
            return r.ReadVarInt() == value && r.Remaining == 0 && n == VarInt.SizeOfSigned(value);
        }).Check(Quick);
    }

    [Fact]
    public void VarLongRoundTrips()
    {
        Prop.ForAll<long>(value =>
        {
            var bytes = Encode(10, (ref KafkaWriter w) => w.WriteVarLong(value), out int n);
            var r = new KafkaReader(bytes);
            return r.ReadVarLong() == value && r.Remaining == 0 && n == VarInt.SizeOfSigned(value);
        }).Check(Quick);
    }

    [Fact]
    public void UnsignedVarIntRoundTrips()
    {
        Prop.ForAll<uint>(value =>
        {
            var bytes = Encode(5, (ref KafkaWriter w) => w.WriteUnsignedVarInt(value), out int n);
            var r = new KafkaReader(bytes);
            return r.ReadUnsignedVarInt() == value && r.Remaining == 0 && n == KafkaWriter.SizeOfUnsignedVarInt(value);
        }).Check(Quick);
    }

    [Fact]
    public void ZigZagIsABijectionThatKeepsSmallMagnitudesSmall()
    {
        Prop.ForAll<int>(value =>
            VarInt.ZigZagDecode((uint)VarInt.ZigZagEncode(value)) == value &&
            // |v| small ⇒ encoding small: zigzag maps -1 → 1, 1 → 2, -2 → 3...
            (uint)VarInt.ZigZagEncode(value) == (value >= 0 ? 2u * (uint)value : 2u * (uint)(-(long)value) - 1u)).Check(Quick);
        Prop.ForAll<long>(value => VarInt.ZigZagDecode((ulong)VarInt.ZigZagEncode(value)) == value).Check(Quick);
    }

    [Fact]
    public void StringsRoundTripInClassicAndCompactForms()
    {
        Prop.ForAll<string?, bool>((value, compact) =>
        {
            // Arbitrary .NET strings may hold lone surrogates, which are not Unicode text; Kafka strings are UTF-8.
            if (value is not null && !IsWellFormed(value)) return true;
            int size = KafkaWriter.SizeOfNullableString(value, compact);
            var bytes = Encode(size, (ref KafkaWriter w) => w.WriteNullableString(value, compact), out int n);
            var r = new KafkaReader(bytes);
            return n == size && r.ReadNullableString(compact) == value && r.Remaining == 0;
        }).Check(Quick);
    }

    [Fact]
    public void BytesRoundTripInClassicAndCompactForms()
    {
        Prop.ForAll<byte[]?, bool>((value, compact) =>
        {
            int size = KafkaWriter.SizeOfNullableBytes(value, compact);
            var bytes = Encode(size, (ref KafkaWriter w) => w.WriteNullableBytes(value, compact), out int n);
            var r = new KafkaReader(bytes);
            var back = r.ReadNullableBytes(compact);
            return n == size && r.Remaining == 0 && (value is null ? back is null : back is not null && back.AsSpan().SequenceEqual(value));
        }).Check(Quick);
    }

    [Fact]
    public void FixedWidthValuesRoundTripBigEndian()
    {
        Prop.ForAll<short, int, long>((s, i, l) =>
        {
            var bytes = Encode(14, (ref KafkaWriter w) => { w.WriteInt16(s); w.WriteInt32(i); w.WriteInt64(l); }, out _);
            var r = new KafkaReader(bytes);
            return r.ReadInt16() == s && r.ReadInt32() == i && r.ReadInt64() == l && r.Remaining == 0;
        }).Check(Quick);
        Prop.ForAll<Guid, double>((g, d) =>
        {
            var bytes = Encode(24, (ref KafkaWriter w) => { w.WriteUuid(g); w.WriteFloat64(d); }, out _);
            var r = new KafkaReader(bytes);
            return r.ReadUuid() == g && BitConverter.DoubleToInt64Bits(r.ReadFloat64()) == BitConverter.DoubleToInt64Bits(d);
        }).Check(Quick);
    }

    [Fact]
    public void UuidIsSixteenBytesMostSignificantFirst()
    {
        // Kafka's Uuid prints as its two longs; the wire carries the most significant long first.
        var g = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        var bytes = Encode(16, (ref KafkaWriter w) => w.WriteUuid(g), out _);
        Assert.Equal(Convert.FromHexString("00112233445566778899AABBCCDDEEFF"), bytes);
    }

    [Fact]
    public void Float64IsIeeeBigEndian()
    {
        var bytes = Encode(8, (ref KafkaWriter w) => w.WriteFloat64(1.5), out _);
        Assert.Equal(Convert.FromHexString("3FF8000000000000"), bytes);
    }

    private static bool IsWellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(s[i])) return false;
        }
        return true;
    }
}
