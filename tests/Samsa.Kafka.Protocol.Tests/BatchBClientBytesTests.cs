using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Message bodies encoded by an independent client, kafka-python 2.0.2 (Debian python3-kafka,
/// <c>kafka.protocol.admin</c> structs, <c>Struct.encode()</c>), for batch-B APIs. Each is decoded by
/// the generated code from our spec files, checked field by field, and re-encoded byte for byte.
/// kafka-python only speaks the non-flexible versions listed here.
/// </summary>
public class BatchBClientBytesTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static byte[] Encode(IKafkaMessage message, short version)
    {
        var buffer = new byte[message.Size(version)];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        Assert.Equal(buffer.Length, writer.Position);
        return buffer;
    }

    private static T ReadRequest<T>(ApiKey key, byte[] bytes, short version)
    {
        var reader = new KafkaReader(bytes);
        var message = ApiMessages.ReadRequest(key, ref reader, version);
        Assert.Equal(0, reader.Remaining);
        Assert.Equal(bytes, Encode(message, version));
        return Assert.IsType<T>(message);
    }

    private static T ReadResponse<T>(ApiKey key, byte[] bytes, short version)
    {
        var reader = new KafkaReader(bytes);
        var message = ApiMessages.ReadResponse(key, ref reader, version);
        Assert.Equal(0, reader.Remaining);
        Assert.Equal(bytes, Encode(message, version));
        return Assert.IsType<T>(message);
    }

    [Fact]
    public void DescribeGroupsResponseV1()
    {
        var response = ReadResponse<DescribeGroupsResponse>(ApiKey.DescribeGroups, Hex(
            "00000005 00000001 0000 0002 6731 0006 537461626C65 0008 636F6E73756D6572 0005 72616E6765" +
            "00000001 0003 6D2D31 0003 636C69 000A 2F3132372E302E302E31 00000002 0001 00000001 02"), 1);
        Assert.Equal(5, response.ThrottleTimeMs);
        var group = Assert.Single(response.Groups);
        Assert.Equal("g1", group.GroupId);
        Assert.Equal("Stable", group.GroupState);
        Assert.Equal("consumer", group.ProtocolType);
        Assert.Equal("range", group.ProtocolData);
        var member = Assert.Single(group.Members);
        Assert.Equal("m-1", member.MemberId);
        Assert.Null(member.GroupInstanceId); // v4+ field keeps its null default
        Assert.Equal("/127.0.0.1", member.ClientHost);
        Assert.Equal(new byte[] { 0, 1 }, member.MemberMetadata);
        Assert.Equal(new byte[] { 2 }, member.MemberAssignment);
        Assert.Equal(int.MinValue, group.AuthorizedOperations); // v3+ field keeps its default
    }

    [Fact]
    public void DescribeGroupsRequestV3()
    {
        var request = ReadRequest<DescribeGroupsRequest>(ApiKey.DescribeGroups, Hex("00000002 0002 6731 0002 6732 01"), 3);
        Assert.Equal(new[] { "g1", "g2" }, request.Groups);
        Assert.True(request.IncludeAuthorizedOperations);
    }

    [Fact]
    public void ListGroupsResponseV2()
    {
        var response = ReadResponse<ListGroupsResponse>(ApiKey.ListGroups, Hex(
            "00000001 0000 00000002 0002 6731 0008 636F6E73756D6572 0002 6732 0000"), 2);
        Assert.Equal(1, response.ThrottleTimeMs);
        Assert.Equal(new[] { "g1", "g2" }, response.Groups.Select(g => g.GroupId));
        Assert.Equal(new[] { "consumer", "" }, response.Groups.Select(g => g.ProtocolType));
    }

    [Fact]
    public void DeleteGroupsResponseV1()
    {
        var response = ReadResponse<DeleteGroupsResponse>(ApiKey.DeleteGroups, Hex(
            "00000000 00000002 0002 6731 0000 0002 6732 0045"), 1);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, response.Results[1].ErrorCode);
    }

    [Fact]
    public void DescribeAclsRequestV1WithNullPrincipal()
    {
        var request = ReadRequest<DescribeAclsRequest>(ApiKey.DescribeAcls, Hex(
            "02 0006 6F7264657273 04 FFFF 0001 2A 03 03"), 1);
        Assert.Equal(2, request.ResourceTypeFilter);          // TOPIC
        Assert.Equal("orders", request.ResourceNameFilter);
        Assert.Equal(4, request.PatternTypeFilter);           // PREFIXED
        Assert.Null(request.PrincipalFilter);
        Assert.Equal("*", request.HostFilter);
        Assert.Equal(3, request.Operation);                   // READ
        Assert.Equal(3, request.PermissionType);              // ALLOW
    }

    [Fact]
    public void CreateAclsRequestV1()
    {
        var request = ReadRequest<CreateAclsRequest>(ApiKey.CreateAcls, Hex(
            "00000001 02 0006 6F7264657273 03 000A 557365723A616C696365 0001 2A 03 03"), 1);
        var creation = Assert.Single(request.Creations);
        Assert.Equal(3, creation.ResourcePatternType);        // LITERAL
        Assert.Equal("User:alice", creation.Principal);
    }

    [Fact]
    public void DeleteAclsResponseV1WithNullMessages()
    {
        var response = ReadResponse<DeleteAclsResponse>(ApiKey.DeleteAcls, Hex(
            "00000000 00000001 0000 FFFF 00000001 0000 FFFF 03 0001 67 04 0008 557365723A626F62 0001 68 02 02"), 1);
        var filter = Assert.Single(response.FilterResults);
        Assert.Null(filter.ErrorMessage);
        var acl = Assert.Single(filter.MatchingAcls);
        Assert.Null(acl.ErrorMessage);
        Assert.Equal(3, acl.ResourceType);                    // GROUP
        Assert.Equal(4, acl.PatternType);
        Assert.Equal("User:bob", acl.Principal);
    }

    [Fact]
    public void SaslHandshakeV1()
    {
        var request = ReadRequest<SaslHandshakeRequest>(ApiKey.SaslHandshake, Hex("000D 534352414D2D5348412D323536"), 1);
        Assert.Equal("SCRAM-SHA-256", request.Mechanism);
        var response = ReadResponse<SaslHandshakeResponse>(ApiKey.SaslHandshake, Hex(
            "0021 00000002 0005 504C41494E 000D 534352414D2D5348412D353132"), 1);
        Assert.Equal((short)ErrorCode.UnsupportedSaslMechanism, response.ErrorCode);
        Assert.Equal(new[] { "PLAIN", "SCRAM-SHA-512" }, response.Mechanisms);
    }

    [Fact]
    public void SaslAuthenticateResponseV1()
    {
        var response = ReadResponse<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, Hex(
            "003A 000C 6261642070617373776F7264 00000000 000000000036EE80"), 1);
        Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, response.ErrorCode);
        Assert.Equal("bad password", response.ErrorMessage);
        Assert.Empty(response.AuthBytes);
        Assert.Equal(3_600_000L, response.SessionLifetimeMs);
    }
}
