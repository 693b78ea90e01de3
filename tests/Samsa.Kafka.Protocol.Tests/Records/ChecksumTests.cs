using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Records;

public class ChecksumTests
{
    [Fact]
    public void Crc32C_matches_published_check_values()
    {
        // "123456789" is the standard CRC catalogue check input; the other three are the iSCSI
        // (RFC 3720 appendix B.4) test vectors.
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
    }

    [Fact]
    public void Crc32C_agrees_with_a_bitwise_reference_on_random_data_of_every_alignment()
    {
        Prop.ForAll<byte[], byte>((data, skip) =>
        {
            ReadOnlySpan<byte> span = data.AsSpan(Math.Min(data.Length, skip % 9));
            return Crc32C.Compute(span) == BitwiseCrc(span, 0x82F63B78u);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Crc32C_update_in_pieces_equals_one_pass()
    {
        Prop.ForAll<byte[], int>((data, cut) =>
        {
            int at = data.Length == 0 ? 0 : Math.Abs(cut % (data.Length + 1));
            uint state = Crc32C.Update(0xFFFFFFFF, data.AsSpan(0, at));
            state = Crc32C.Update(state, data.AsSpan(at));
            return ~state == Crc32C.Compute(data);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Crc32_ieee_matches_check_value_and_reference()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Prop.ForAll<byte[]>(data => Crc32.Compute(data) == BitwiseCrc(data, 0xEDB88320u)).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void XxHash32_matches_reference_values()
    {
        // Values from the python xxhash binding of the reference C library (seed 0).
        Assert.Equal(0x02CC5D05u, XxHash32.Hash([]));
        Assert.Equal(0x550D7456u, XxHash32.Hash("a"u8));
        Assert.Equal(0x32D153FFu, XxHash32.Hash("abc"u8));
        Assert.Equal(0x937BAD67u, XxHash32.Hash("123456789"u8));
        Assert.Equal(0xE2293B2Fu, XxHash32.Hash(Encoding.ASCII.GetBytes("Nobody inspects the spammish repetition")));
        Assert.Equal(0x7F89BA44u, XxHash32.Hash(Enumerable.Range(0, 100).Select(i => (byte)i).ToArray()));
    }

    private static uint BitwiseCrc(ReadOnlySpan<byte> data, uint polynomial)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1;
        }
        return ~crc;
    }
}
