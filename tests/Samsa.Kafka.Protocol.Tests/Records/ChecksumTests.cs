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
    public void Crc32C_of_long_inputs_agrees_with_the_bitwise_reference()
    {
        // Inputs of 1.5 KiB and more take the three-chain path (three 512-byte blocks joined by
        // a shift); lengths around its group boundaries, every alignment, and a produce batch's size.
        var random = new Random(19);
        byte[] data = new byte[16 * 1024 + 100];
        random.NextBytes(data);
        foreach (int length in new[] { 1535, 1536, 1537, 1543, 1544, 3071, 3072, 3073, 4608, 4615, 16 * 1024, 16 * 1024 + 61 })
        {
            for (int skip = 0; skip < 9; skip++)
            {
                ReadOnlySpan<byte> span = data.AsSpan(skip, length);
                Assert.Equal(BitwiseCrc(span, 0x82F63B78u), Crc32C.Compute(span));
            }
        }
        // A flipped bit in each block of a group (first, second, third chain) and in the tail changes the sum.
        uint clean = Crc32C.Compute(data.AsSpan(0, 3 * 512 + 100));
        foreach (int at in new[] { 5, 512 + 7, 1024 + 9, 1536 + 50 })
        {
            data[at] ^= 0x10;
            Assert.NotEqual(clean, Crc32C.Compute(data.AsSpan(0, 3 * 512 + 100)));
            Assert.Equal(BitwiseCrc(data.AsSpan(0, 3 * 512 + 100), 0x82F63B78u), Crc32C.Compute(data.AsSpan(0, 3 * 512 + 100)));
            data[at] ^= 0x10;
        }
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
