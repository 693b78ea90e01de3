using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Bytes assembled by hand from the protocol definition (kafka.apache.org/protocol and KIP-482 /
/// KIP-511), decoded by the generated code, and re-encoded byte for byte.
/// </summary>
public class GoldenBytesTests
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

    // ApiVersionsRequest v3 as a Java client sends it: request header v2 whose client id keeps the
    // classic int16 length (KIP-511), then a flexible body with compact strings.
    private static readonly byte[] ApiVersionsV3Frame = Hex(
        "0012 0003 0000002A" +                 // api key 18, version 3, correlation id 42
        "000D 61646D696E636C69656E742D31" +    // client id "adminclient-1", int16 length 13
        "00" +                                 // header tagged fields: none
        "12 6170616368652D6B61666B612D6A617661" + // compact "apache-kafka-java" (17 + 1 = 0x12)
        "06 332E392E30" +                      // compact "3.9.0"
        "00");                                 // body tagged fields: none

    [Fact]
    public void ApiVersionsRequestV3WithHeaderV2Decodes()
    {
        var reader = new KafkaReader(ApiVersionsV3Frame);
        short apiKey = 18, apiVersion = 3;
        Assert.Equal(2, ApiMessages.RequestHeaderVersion(apiKey, apiVersion));
        var header = RequestHeader.Read(ref reader, 2);
        Assert.Equal(18, header.RequestApiKey);
        Assert.Equal(3, header.RequestApiVersion);
        Assert.Equal(42, header.CorrelationId);
        Assert.Equal("adminclient-1", header.ClientId);

        var body = Assert.IsType<ApiVersionsRequest>(ApiMessages.ReadRequest(ApiKey.ApiVersions, ref reader, header.RequestApiVersion));
        Assert.Equal("apache-kafka-java", body.ClientSoftwareName);
        Assert.Equal("3.9.0", body.ClientSoftwareVersion);
        Assert.Equal(0, reader.Remaining);

        Assert.Equal(ApiVersionsV3Frame, Encode(header, 2).Concat(Encode(body, 3)).ToArray());
    }

    [Fact]
    public void ApiVersionsRequestV0HasAnEmptyBodyAndHeaderV1()
    {
        Assert.Equal(1, ApiMessages.RequestHeaderVersion(18, 0));
        var reader = new KafkaReader(Hex("0012 0000 00000001 FFFF")); // null client id
        var header = RequestHeader.Read(ref reader, 1);
        Assert.Null(header.ClientId);
        var body = (ApiVersionsRequest)ApiMessages.ReadRequest(ApiKey.ApiVersions, ref reader, 0);
        Assert.Equal("", body.ClientSoftwareName);
        Assert.Equal(0, reader.Remaining);
        // The v3 fields are ignorable, so writing them at v0 drops them.
        Assert.Empty(Encode(new ApiVersionsRequest { ClientSoftwareName = "x" }, 0));
    }

    [Fact]
    public void MetadataRequestV1Decodes()
    {
        var frame = Hex(
            "0003 0001 00000007" +     // Metadata v1, correlation id 7
            "0004 6B636174" +          // client id "kcat"
            "00000002" +               // two topics (int32 count: not flexible)
            "0001 61" +                // "a"
            "0002 6263");              // "bc"
        var reader = new KafkaReader(frame);
        var header = RequestHeader.Read(ref reader, ApiMessages.RequestHeaderVersion(3, 1));
        Assert.Equal("kcat", header.ClientId);
        var request = (MetadataRequest)ApiMessages.ReadRequest(ApiKey.Metadata, ref reader, 1);
        Assert.NotNull(request.Topics);
        Assert.Equal(["a", "bc"], request.Topics!.Select(t => t.Name));
        Assert.Equal(0, reader.Remaining);
        Assert.Equal(frame.AsSpan(header.Size(1)).ToArray(), Encode(request, 1));
    }

    [Fact]
    public void MetadataRequestV1NullTopicsMeansAllButV0RejectsNull()
    {
        var reader = new KafkaReader(Hex("FFFFFFFF"));
        var request = MetadataRequest.Read(ref reader, 1);
        Assert.Null(request.Topics);

        var e = CatchRead(() => { var r = new KafkaReader(Hex("FFFFFFFF")); MetadataRequest.Read(ref r, 0); });
        Assert.Equal(ProtocolErrorKind.Malformed, e.Kind);
    }

    // ApiVersionsResponse v3: flexible body, one ApiVersion entry and the FinalizedFeaturesEpoch
    // tagged field (tag 1); the default-valued tagged fields are not sent.
    private static readonly byte[] ApiVersionsResponseV3 = Hex(
        "0000" +                    // error code 0
        "02" +                      // compact array: 1 entry
        "0012 0000 0004 00" +       // ApiVersions 0-4, entry tagged fields: none
        "00000000" +                // throttle time 0
        "01" +                      // one tagged field
        "01 08 0000000000000005");  // tag 1, size 8, epoch 5

    [Fact]
    public void ApiVersionsResponseV3EncodesOnlyNonDefaultTaggedFields()
    {
        var response = new ApiVersionsResponse
        {
            ApiKeys = [new ApiVersionsResponse.ApiVersion { ApiKey = 18, MinVersion = 0, MaxVersion = 4 }],
            FinalizedFeaturesEpoch = 5,
        };
        Assert.Equal(ApiVersionsResponseV3, Encode(response, 3));
        var reader = new KafkaReader(ApiVersionsResponseV3);
        var back = ApiVersionsResponse.Read(ref reader, 3);
        Assert.Equal(5, back.FinalizedFeaturesEpoch);
        Assert.Empty(back.SupportedFeatures);
        Assert.False(back.ZkMigrationReady);
        Assert.Equal(18, Assert.Single(back.ApiKeys).ApiKey);
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion(18, 3));
    }

    [Fact]
    public void UnknownTaggedFieldsAreSkipped()
    {
        // ApiVersionsRequest v3 body followed by two tagged fields it does not define (KIP-482:
        // a reader skips unknown tags by their size).
        var body = Hex("02 61 02 62" + "02" + "05 03 AABBCC" + "09 00");
        var reader = new KafkaReader(body);
        var request = ApiVersionsRequest.Read(ref reader, 3);
        Assert.Equal("a", request.ClientSoftwareName);
        Assert.Equal("b", request.ClientSoftwareVersion);
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void HeaderVersionsFollowFlexibleVersions()
    {
        // Metadata is flexible from v9: request header v2 / response header v1 from there on.
        Assert.Equal(1, ApiMessages.RequestHeaderVersion(3, 8));
        Assert.Equal(2, ApiMessages.RequestHeaderVersion(3, 9));
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion(3, 8));
        Assert.Equal(1, ApiMessages.ResponseHeaderVersion(3, 9));
        // ApiVersions: request header follows the rule, the response header is always v0.
        Assert.Equal(2, ApiMessages.RequestHeaderVersion(18, 4));
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion(18, 4));
        Assert.Throws<KafkaProtocolException>(() => ApiMessages.RequestHeaderVersion(-5, 0));
    }

    [Fact]
    public void ApiKeyEnumAndRangesComeFromTheSchemas()
    {
        Assert.Equal(0, (short)ApiKey.Produce);
        Assert.Equal(3, (short)ApiKey.Metadata);
        Assert.Equal(18, (short)ApiKey.ApiVersions);
        Assert.True(ApiMessages.TryGetVersionRange(18, out var lo, out var hi));
        Assert.Equal((0, 4), (lo, hi));
        Assert.Equal(MetadataRequest.HighestSupportedVersion, ApiMessages.HighestSupportedVersion(ApiKey.Metadata));
        Assert.False(ApiMessages.IsKnown(-1));
        Assert.Contains(ApiKey.Fetch, ApiMessages.All);
        Assert.IsType<ApiVersionsResponse>(ApiMessages.CreateResponse(ApiKey.ApiVersions));
        Assert.IsType<FetchRequest>(ApiMessages.CreateRequest(ApiKey.Fetch));
        var e = CatchRead(() => { var r = new KafkaReader(new byte[8]); ApiMessages.ReadRequest(ApiKey.ApiVersions, ref r, 5); });
        Assert.Equal(ProtocolErrorKind.UnsupportedVersion, e.Kind);
    }

    internal static KafkaProtocolException CatchRead(Action read)
    {
        try
        {
            read();
        }
        catch (KafkaProtocolException e)
        {
            return e;
        }
        throw new Xunit.Sdk.XunitException("expected a KafkaProtocolException");
    }
}

public class KafkaHeadersTests
{
    [Fact]
    public void RequestHeaderVersionIsChosenFromThePeekedKeyAndVersion()
    {
        // Metadata v9 (flexible): header v2 with a trailing tagged-field byte, then the body.
        var frame = Convert.FromHexString("0003 0009 00000005 0001 63 00".Replace(" ", "") + "01" + "01" + "00" + "00" + "00");
        var reader = new KafkaReader(frame);
        var header = KafkaHeaders.ReadRequestHeader(ref reader, out var headerVersion);
        Assert.Equal(2, headerVersion);
        Assert.Equal("c", header.ClientId);
        Assert.Equal(5, header.CorrelationId);
        Assert.Equal(12, reader.Position); // 2 + 2 + 4 + (2 + 1) client id + 1 tagged count
        var body = (MetadataRequest)ApiMessages.ReadRequest((ApiKey)header.RequestApiKey, ref reader, header.RequestApiVersion);
        Assert.Empty(body.Topics!);
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void UnknownApiKeyIsRefused()
    {
        var e = GoldenBytesTests.CatchRead(() => { var r = new KafkaReader(Convert.FromHexString("7FFF000000000001FFFF")); KafkaHeaders.ReadRequestHeader(ref r, out _); });
        Assert.Equal(ProtocolErrorKind.UnsupportedVersion, e.Kind);
    }

    [Fact]
    public void ResponsesCarryTheRightHeader()
    {
        // ApiVersions v3: header v0 (4 bytes) even though the body is flexible.
        var apiVersions = KafkaHeaders.EncodeResponse(9, 18, 3, new ApiVersionsResponse());
        Assert.Equal(Convert.FromHexString("00000009" + "0000" + "01" + "00000000" + "00"), apiVersions);
        // Metadata v9: header v1 adds an empty tagged-field section after the correlation id.
        var metadata = KafkaHeaders.EncodeResponse(9, 3, 9, new MetadataResponse());
        Assert.Equal(Convert.FromHexString("00000009" + "00"), metadata.AsSpan(0, 5).ToArray());
        Assert.Equal(5 + new MetadataResponse().Size(9), metadata.Length);
    }
}
