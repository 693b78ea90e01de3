using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol.Records;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>A broker with in-memory logs and no listener; requests go straight to the handlers,
/// after a round trip through the wire encoding of the version under test.</summary>
public sealed class HandlerFixture : IAsyncDisposable
{
    public KafkaBroker Broker { get; }

    public HandlerFixture(params (string Key, string Value)[] props)
    {
        var all = new Dictionary<string, string> { ["broker.id"] = "1" };
        foreach (var (k, v) in props) all[k] = v;
        Broker = new KafkaBroker(new BrokerConfig(all), inMemory: true);
        Broker.SetAdvertisedEndpointForTests("127.0.0.1", 9092);
    }

    /// <summary>Requests to an existing broker (one with log files, for restart tests); the caller disposes it.</summary>
    public HandlerFixture(KafkaBroker broker) => Broker = broker;

    /// <summary>Encodes the request at <paramref name="version"/>, decodes it as the broker would,
    /// handles it, and round-trips the response through the same version's encoding.</summary>
    public async Task<TResponse?> Send<TResponse>(IKafkaMessage request, short version) where TResponse : class, IKafkaMessage<TResponse>
    {
        var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 7, ClientId = "test" };
        var frame = new KafkaWireClient_Encoder().Encode(request, version);
        var (parsedHeader, parsed, error) = Network.KafkaConnectionHandler.Parse(frame);
        Assert.Null(error);
        var entry = ApiTable.Find(request.ApiKey)!;
        var response = await entry.Handler(new RequestContext { Header = parsedHeader!, Broker = Broker }, parsed!);
        if (response is null) return null;
        var bytes = Network.KafkaConnectionHandler.Serialize(header, response, version, out int length);
        return KafkaWireClient.Decode<TResponse>(bytes[..length], request.ApiKey, version, 7);
    }

    public async Task<string> CreateTopic(string name, int partitions = 1, params (string K, string V)[] configs)
    {
        var r = await Send<CreateTopicsResponse>(new CreateTopicsRequest
        {
            Topics = [new CreateTopicsRequest.CreatableTopic
            {
                Name = name, NumPartitions = partitions, ReplicationFactor = 1,
                Configs = configs.Select(c => new CreateTopicsRequest.CreatableTopicConfig { Name = c.K, Value = c.V }).ToList(),
            }],
        }, 7);
        Assert.Equal(0, r!.Topics[0].ErrorCode);
        return name;
    }

    public async Task<ProduceResponse.PartitionProduceResponse> Produce(string topic, int partition, byte[] records, short version = 9, short acks = 1)
    {
        var r = await Send<ProduceResponse>(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 1000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = records }] }],
        }, version);
        return r!.Responses[0].PartitionResponses[0];
    }

    public static byte[] Batch(params string[] values) =>
        RecordBatchBuilder.Build(values.Select(v => ((byte[]?)null, (byte[]?)System.Text.Encoding.UTF8.GetBytes(v))).ToList(),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    public async Task<FetchResponse.PartitionData> Fetch(string topic, int partition, long offset, short version = 12, int maxWaitMs = 0,
        int minBytes = 0, int maxBytes = 1 << 20, int partitionMaxBytes = 1 << 20)
    {
        var r = await Send<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = maxWaitMs, MinBytes = minBytes, MaxBytes = maxBytes, SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic
            {
                Topic = topic, TopicId = Broker.Replicas.GetTopic(topic)?.Id ?? Guid.Empty,
                Partitions = [new FetchRequest.FetchPartition { Partition = partition, FetchOffset = offset, PartitionMaxBytes = partitionMaxBytes }],
            }],
        }, version);
        Assert.Equal(0, r!.ErrorCode);
        return r.Responses[0].Partitions[0];
    }

    public static List<string> Values(FetchResponse.PartitionData pd) =>
        RecordBatch.ReadRecords(pd.Records is { } m ? m.Span : default)
            .Select(r => System.Text.Encoding.UTF8.GetString(r.Value!)).ToList();

    public ValueTask DisposeAsync() => Broker.DisposeAsync();

    // Encodes a request frame body (no length prefix) with the generated header.
    private sealed class KafkaWireClient_Encoder
    {
        public byte[] Encode(IKafkaMessage request, short version)
        {
            var header = new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = 7, ClientId = "test" };
            short hv = ApiMessages.RequestHeaderVersion(request.ApiKey, version);
            var buffer = new byte[header.Size(hv) + request.Size(version)];
            var w = new Samsa.Kafka.Protocol.Primitives.KafkaWriter(buffer);
            header.Write(ref w, hv);
            request.Write(ref w, version);
            return buffer;
        }
    }
}
