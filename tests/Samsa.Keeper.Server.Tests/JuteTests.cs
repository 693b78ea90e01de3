using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

public sealed class JuteTests
{
    [Fact]
    public void Records_round_trip_and_size_matches_the_bytes_written()
    {
        var req = new CreateRequest
        {
            Path = "/a/ü", Data = new byte[] { 1, 2, 3 }, Flags = 3,
            Acl = new List<ACL> { new() { Perms = 31, Id = new Id { Scheme = "world", IdValue = "anyone" } } },
        };
        var bytes = req.ToBytes();
        Assert.Equal(req.Size(), bytes.Length);
        var r = new JuteReader(bytes);
        var back = CreateRequest.Read(ref r);
        Assert.Equal(0, r.Remaining);
        Assert.Equal("/a/ü", back.Path);
        Assert.Equal(new byte[] { 1, 2, 3 }, back.Data);
        Assert.Equal(3, back.Flags);
        Assert.Equal("anyone", back.Acl!.Single().Id.IdValue);
    }

    [Fact]
    public void Null_buffers_strings_and_vectors_are_minus_one()
    {
        var w = new SetWatches { RelativeZxid = 5, DataWatches = null, ExistWatches = new List<string>(), ChildWatches = null };
        var bytes = w.ToBytes();
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff }, bytes);
        var r = new JuteReader(bytes);
        var back = SetWatches.Read(ref r);
        Assert.Null(back.DataWatches);
        Assert.Empty(back.ExistWatches!);
        var g = new GetDataResponse { Data = null };
        var r2 = new JuteReader(g.ToBytes());
        Assert.Null(GetDataResponse.Read(ref r2).Data);
    }

    [Fact]
    public void Stat_is_68_bytes_big_endian()
    {
        var s = new Stat { Czxid = 0x0102030405060708, Version = 0x0a0b0c0d };
        var b = s.ToBytes();
        Assert.Equal(68, b.Length);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, b[..8]);
        Assert.Equal(new byte[] { 0x0a, 0x0b, 0x0c, 0x0d }, b[32..36]);
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xfe })]               // -2: negative length
    [InlineData(new byte[] { 0, 0, 0, 9, 1, 2 })]                     // longer than the input
    [InlineData(new byte[] { 0x7f, 0xff, 0xff, 0xff })]               // absurd length, no allocation
    [InlineData(new byte[] { 0, 0 })]                                 // truncated length
    public void Bad_buffer_lengths_throw_before_allocating(byte[] input)
    {
        Assert.Throws<JuteException>(() =>
        {
            var r = new JuteReader(input);
            r.ReadBuffer();
        });
    }

    [Fact]
    public void Lengths_above_jute_maxbuffer_are_rejected()
    {
        var input = new byte[4 + 100];
        input[3] = 100;
        Assert.Throws<JuteException>(() =>
        {
            var r = new JuteReader(input, maxBuffer: 50);
            r.ReadBuffer();
        });
    }

    [Fact]
    public void Vector_counts_beyond_the_input_are_rejected()
    {
        var input = new byte[] { 0x00, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
        Assert.Throws<JuteException>(() =>
        {
            var r = new JuteReader(input);
            GetChildrenResponse.Read(ref r);
        });
    }
}
