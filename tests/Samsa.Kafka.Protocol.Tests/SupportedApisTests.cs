using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

public class SupportedApisTests
{
    [Fact]
    public void ServedRangesAnswerDispatchAndApiVersionsAlike()
    {
        var apis = new SupportedApis()
            .Register(ApiKey.Metadata, 0, 12)
            .Register(ApiKey.ApiVersions, 0, 4)
            .Register(ApiKey.Produce, 3, 9);

        Assert.True(apis.IsServed(3, 12));
        Assert.False(apis.IsServed(3, 13));
        Assert.False(apis.IsServed(0, 2));
        Assert.True(apis.IsServed(0, 3));
        Assert.False(apis.IsServed(1, 0)); // Fetch not registered
        Assert.False(apis.IsServed(-1, 0));
        Assert.False(apis.IsServed(short.MaxValue, 0));

        // The ApiVersions answer lists exactly the registered ranges, in key order.
        var list = apis.ToApiVersions();
        Assert.Equal([(0, 3, 9), (3, 0, 12), (18, 0, 4)], list.Select(a => ((int)a.ApiKey, (int)a.MinVersion, (int)a.MaxVersion)));

        // And it encodes as a valid ApiVersions response.
        var response = new ApiVersionsResponse { ApiKeys = list };
        var buffer = new byte[response.Size(3)];
        var writer = new KafkaWriter(buffer);
        response.Write(ref writer, 3);
        var reader = new KafkaReader(buffer);
        Assert.Equal(3, ApiVersionsResponse.Read(ref reader, 3).ApiKeys.Count);
    }

    [Fact]
    public void RangesOutsideTheSchemaOrTwiceRegisteredAreRefused()
    {
        var apis = new SupportedApis();
        Assert.Throws<ArgumentException>(() => apis.Register(ApiKey.ApiVersions, 0, (short)(ApiVersionsRequest.HighestSupportedVersion + 1)));
        Assert.Throws<ArgumentException>(() => apis.Register(ApiKey.ApiVersions, 3, 2));
        Assert.Throws<ArgumentException>(() => apis.Register((ApiKey)9999, 0, 0));
        apis.Register(ApiKey.ApiVersions, 0, 3);
        Assert.Throws<InvalidOperationException>(() => apis.Register(ApiKey.ApiVersions, 0, 3));
        Assert.Single(apis.Entries);
    }
}

public class KafkaMessageHelperTests
{
    [Fact]
    public void EncodeAndDecodeWholeBuffers()
    {
        var header = new RequestHeader { RequestApiKey = 3, RequestApiVersion = 1, CorrelationId = 77, ClientId = "me" };
        var bytes = KafkaMessage.Encode(header, 1);
        Assert.Equal(Convert.FromHexString("0003" + "0001" + "0000004D" + "0002" + "6D65"), bytes);
        Assert.Equal("me", KafkaMessage.Decode<RequestHeader>(bytes, 1).ClientId);
        var e = Assert.Throws<KafkaProtocolException>(() => KafkaMessage.Decode<RequestHeader>(bytes.Append((byte)0).ToArray(), 1));
        Assert.Equal(ProtocolErrorKind.Malformed, e.Kind);
    }
}
