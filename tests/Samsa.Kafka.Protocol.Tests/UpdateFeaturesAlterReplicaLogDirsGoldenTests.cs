using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// UpdateFeatures (57) v0-2 and AlterReplicaLogDirs (34) v0-2 in bytes assembled by hand from the
/// upstream 4.2 schemas' field order (not by our generator): each decodes completely to the
/// expected values and re-encodes byte for byte. (GeneratedRoundTripTests covers random values.)
/// </summary>
public class UpdateFeaturesAlterReplicaLogDirsGoldenTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));
    private const string GroupVersion = "0e 67726f75702e76657273696f6e";   // compact "group.version"

    private static T Decode<T>(ApiKey key, short version, byte[] bytes, bool request = true) where T : IKafkaMessage
    {
        var reader = new KafkaReader(bytes);
        var message = request ? ApiMessages.ReadRequest(key, ref reader, version) : ApiMessages.ReadResponse(key, ref reader, version);
        Assert.Equal(0, reader.Remaining);
        var again = new byte[message.Size(version)];
        var writer = new KafkaWriter(again);
        message.Write(ref writer, version);
        Assert.Equal(bytes, again);
        return Assert.IsType<T>(message);
    }

    [Fact]
    public void UpdateFeaturesRequestV0HasAllowDowngrade()
    {
        var r = Decode<UpdateFeaturesRequest>(ApiKey.UpdateFeatures, 0, Hex($"0000ea60 02 {GroupVersion} 0000 01 00 00"));
        Assert.Equal(60000, r.TimeoutMs);
        var u = Assert.Single(r.FeatureUpdates);
        Assert.Equal(("group.version", (short)0, true), (u.Feature, u.MaxVersionLevel, u.AllowDowngrade));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void UpdateFeaturesRequestV1AndV2HaveUpgradeTypeAndValidateOnly(short version)
    {
        var r = Decode<UpdateFeaturesRequest>(ApiKey.UpdateFeatures, version, Hex($"00002710 02 {GroupVersion} 0001 03 00 01 00"));
        Assert.Equal(10000, r.TimeoutMs);
        var u = Assert.Single(r.FeatureUpdates);
        Assert.Equal(("group.version", (short)1, (sbyte)3), (u.Feature, u.MaxVersionLevel, u.UpgradeType));
        Assert.True(r.ValidateOnly);
    }

    [Fact]
    public void UpdateFeaturesResponseV1CarriesResultsAndV2DoesNot()
    {
        var v1 = Decode<UpdateFeaturesResponse>(ApiKey.UpdateFeatures, 1, Hex($"00000000 0000 00 02 {GroupVersion} 0000 00 00 00"), request: false);
        Assert.Null(v1.ErrorMessage);
        Assert.Equal(("group.version", (short)0), (v1.Results.Single().Feature, v1.Results.Single().ErrorCode));
        var v2 = Decode<UpdateFeaturesResponse>(ApiKey.UpdateFeatures, 2, Hex("00000005 005f 02 78 00"), request: false);
        Assert.Equal((5, (short)95, "x"), (v2.ThrottleTimeMs, v2.ErrorCode, v2.ErrorMessage));
        Assert.Empty(v2.Results);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void AlterReplicaLogDirsRequestV0AndV1(short version)
    {
        var r = Decode<AlterReplicaLogDirsRequest>(ApiKey.AlterReplicaLogDirs, version,
            Hex("00000001 0003 2f6432 00000001 0001 74 00000002 00000000 00000003"));
        var d = Assert.Single(r.Dirs);
        Assert.Equal("/d2", d.Path);
        Assert.Equal("t", d.Topics.Single().Name);
        Assert.Equal([0, 3], d.Topics.Single().Partitions);
    }

    [Fact]
    public void AlterReplicaLogDirsRequestV2IsFlexible()
    {
        var r = Decode<AlterReplicaLogDirsRequest>(ApiKey.AlterReplicaLogDirs, 2, Hex("02 04 2f6432 02 02 74 03 00000000 00000003 00 00 00"));
        Assert.Equal(("/d2", "t"), (r.Dirs.Single().Path, r.Dirs.Single().Topics.Single().Name));
        Assert.Equal([0, 3], r.Dirs.Single().Topics.Single().Partitions);
    }

    [Fact]
    public void AlterReplicaLogDirsResponses()
    {
        var v0 = Decode<AlterReplicaLogDirsResponse>(ApiKey.AlterReplicaLogDirs, 0,
            Hex("00000000 00000001 0001 74 00000001 00000000 0039"), request: false);
        Assert.Equal(("t", 0, (short)57), (v0.Results.Single().TopicName, v0.Results.Single().Partitions.Single().PartitionIndex, v0.Results.Single().Partitions.Single().ErrorCode));
        var v2 = Decode<AlterReplicaLogDirsResponse>(ApiKey.AlterReplicaLogDirs, 2,
            Hex("00000000 02 02 74 02 00000000 0039 00 00 00"), request: false);
        Assert.Equal((short)57, v2.Results.Single().Partitions.Single().ErrorCode);
    }
}
