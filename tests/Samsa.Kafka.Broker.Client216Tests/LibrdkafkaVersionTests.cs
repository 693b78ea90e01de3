using Confluent.Kafka;
using Xunit;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Samsa.Kafka.Broker.Client216Tests;

public sealed class LibrdkafkaVersionTests
{
    /// <summary>The build replaces the redist's GSSAPI librdkafka.so with its centos8 build; were
    /// that missing, .NET would load Debian's 2.0.2 and every test here would test the old generation.</summary>
    [Fact]
    public void TheRedistsLibrdkafka216IsLoaded()
    {
        Assert.StartsWith("2.16", Library.VersionString);
        Assert.Equal(0x021000ff, Library.Version);
        Assert.StartsWith("2.16", typeof(Library).Assembly.GetName().Version!.ToString());
    }
}
