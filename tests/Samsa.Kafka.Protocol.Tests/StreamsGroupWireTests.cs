using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// StreamsGroupHeartbeat/StreamsGroupDescribe v0 (KIP-1071) byte layouts written out by hand from
/// upstream's schemas (field order, compact strings/arrays, nullable struct markers, tagged-field
/// bytes), so a field out of place in protocol-specs/kafka fails here. Random round trips of every
/// field at every version are in GeneratedRoundTripTests.
/// </summary>
public class StreamsGroupWireTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static T Decode<T>(ApiKey key, byte[] bytes, bool request) where T : IKafkaMessage
    {
        var reader = new KafkaReader(bytes);
        var message = request ? ApiMessages.ReadRequest(key, ref reader, 0) : ApiMessages.ReadResponse(key, ref reader, 0);
        Assert.Equal(0, reader.Remaining);
        var again = new byte[message.Size(0)];
        var writer = new KafkaWriter(again);
        message.Write(ref writer, 0);
        Assert.Equal(bytes, again);
        return Assert.IsType<T>(message);
    }

    [Fact]
    public void HeartbeatJoinRequestV0()
    {
        var r = Decode<StreamsGroupHeartbeatRequest>(ApiKey.StreamsGroupHeartbeat, Hex(
            "0267 026d 00000000 ffffffff 00 00 000003e8" +               // group, member, epoch 0, endpoint epoch -1, no instance/rack, 1000 ms
            "01 00000000 02 0230 02 0274 01 01 01 01 01 00 00" +           // topology epoch 0: sub-topology "0" reading "t"
            "01 01 01 0270 01 0268 0050 00" +                             // no tasks owned, process "p", endpoint h:80
            "00 00 00 00 00"), request: true);                            // no tags/offsets, no shutdown, no tagged fields
        Assert.Equal(("g", "m", 0, -1, 1000), (r.GroupId, r.MemberId, r.MemberEpoch, r.EndpointInformationEpoch, r.RebalanceTimeoutMs));
        Assert.Null(r.InstanceId);
        Assert.Equal("t", Assert.Single(Assert.Single(r.Topology!.Subtopologies).SourceTopics));
        Assert.Equal(("p", "h", (ushort)80), (r.ProcessId, r.UserEndpoint!.Host, r.UserEndpoint.Port));
        Assert.Empty(r.ActiveTasks!);
        Assert.Null(r.ClientTags);
        Assert.False(r.ShutdownApplication);
    }

    [Fact]
    public void HeartbeatResponseV0()
    {
        var r = Decode<StreamsGroupHeartbeatResponse>(ApiKey.StreamsGroupHeartbeat, Hex(
            "00000000 0000 00 026d 00000002 00001388 00002710 0000ea60" +  // throttle, no error, member "m", epoch 2, 5000, 10000, 60000
            "02 03 0278 00" +                                             // status MISSING_INTERNAL_TOPICS "x"
            "02 0230 02 00000001 00 01 01" +                              // active task 0_1, no standby/warm-up
            "00000003 00 00"), request: false);                           // endpoint epoch 3, no endpoint map, no tagged fields
        Assert.Equal(("m", 2, 5000, 10000, 60000), (r.MemberId, r.MemberEpoch, r.HeartbeatIntervalMs, r.AcceptableRecoveryLag, r.TaskOffsetIntervalMs));
        Assert.Equal((3, "x"), (r.Status![0].StatusCode, r.Status[0].StatusDetail));
        Assert.Equal([1], Assert.Single(r.ActiveTasks!).Partitions);
        Assert.Equal(3, r.EndpointInformationEpoch);
        Assert.Null(r.PartitionsByUserEndpoint);
    }

    [Fact]
    public void DescribeRequestAndResponseV0()
    {
        var q = Decode<StreamsGroupDescribeRequest>(ApiKey.StreamsGroupDescribe, Hex("02 0267 01 00"), request: true);
        Assert.Equal(("g", true), (Assert.Single(q.GroupIds), q.IncludeAuthorizedOperations));
        var r = Decode<StreamsGroupDescribeResponse>(ApiKey.StreamsGroupDescribe, Hex(
            "00000000 02" +                                               // throttle, one group
            "0000 00 0267 0753746162 6c65 00000003 00000003" +            // no error, "g", "Stable", epochs 3/3
            "01 00000001 00 00" +                                         // topology epoch 1, sub-topologies null (not ready)
            "01" +                                                        // no members
            "80000000 00 00"), request: false);                           // operations not asked, no tagged fields
        var g = Assert.Single(r.Groups);
        Assert.Equal(("g", "Stable", 3, 1), (g.GroupId, g.GroupState, g.GroupEpoch, g.Topology!.Epoch));
        Assert.Null(g.Topology.Subtopologies);
        Assert.Equal(int.MinValue, g.AuthorizedOperations);
    }
}
