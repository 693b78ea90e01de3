using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Broker.Client216Tests;

/// <summary>
/// What librdkafka 2.16 actually puts on the wire against Samsa's Kafka 4.2 table: a recording
/// proxy sits in front of one broker as the bootstrap server, so the bootstrap connection's
/// ApiVersions and Metadata requests are seen as sent. Each must decode completely and re-encode
/// byte for byte, the versions must be the highest both sides know (librdkafka 2.16: ApiVersions
/// v3, Metadata v13), and the client must accept the answers (it goes on to list the topic).
/// The captured bodies are kept as hex in tests/Samsa.Kafka.Protocol.Tests (Librdkafka216GoldenTests).
/// </summary>
public sealed class WireCaptureTests(SingleBroker target) : IClassFixture<SingleBroker>
{
    private sealed record Frame(short ApiKey, short ApiVersion, RequestHeader Header, byte[] Body);

    [Fact]
    public async Task ApiVersionsV3AndMetadataV13FromLibrdkafka216DecodeAndReencode()
    {
        var topic = target.NewTopicName("wire");
        await target.CreateTopicAsync(topic, 1);
        var brokerPort = int.Parse(target.Bootstrap.Split(':')[1]);
        var frames = new List<Frame>();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var proxy = Task.Run(() => ProxyOneConnectionAsync(listener, brokerPort, frames, stop.Token));

        var config = new AdminClientConfig { BootstrapServers = $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", ClientId = "wire-capture" };
        using (var admin = new AdminClientBuilder(config).Build())
        {
            var md = admin.GetMetadata(topic, TimeSpan.FromSeconds(20));
            Assert.Equal(Confluent.Kafka.ErrorCode.NoError, md.Topics.Single().Error.Code);
        }
        await stop.CancelAsync();
        try { await proxy.WaitAsync(TimeSpan.FromSeconds(5)); } catch (OperationCanceledException) { }

        Frame[] seen;
        lock (frames) seen = frames.ToArray();
        var apiVersions = seen.First(f => f.ApiKey == (short)ApiKey.ApiVersions);
        Assert.Equal(3, apiVersions.ApiVersion);
        var av = (ApiVersionsRequest)DecodeAndReencode(apiVersions);
        Assert.Equal("2.16.0", av.ClientSoftwareVersion);

        var metadata = seen.First(f => f.ApiKey == (short)ApiKey.Metadata);
        Assert.Equal(13, metadata.ApiVersion);
        DecodeAndReencode(metadata);
        // SAMSA_WIRE_CAPTURE=file writes the captured bodies as hex (to refresh the golden table).
        if (Environment.GetEnvironmentVariable("SAMSA_WIRE_CAPTURE") is { } path)
            File.WriteAllLines(path, seen.Select(f => $"{(ApiKey)f.ApiKey} v{f.ApiVersion} {Convert.ToHexString(f.Body).ToLowerInvariant()}"));
    }

    /// <summary>
    /// librdkafka 2.16's KIP-848 consumer (GroupProtocol = Consumer) against a broker that advertises
    /// the recording proxy, so the coordinator connection passes through it too: every
    /// ConsumerGroupHeartbeat is v1, decodes completely and re-encodes byte for byte; the first one
    /// joins (epoch 0, a client-chosen member id, the subscribed topic, no owned partitions) and the
    /// member ends up assigned the topic's partitions.
    /// </summary>
    [Fact]
    public async Task ConsumerGroupHeartbeatV1FromLibrdkafka216DecodesAndReencodes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int proxyPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        var dir = Path.Combine(Path.GetTempPath(), "c216-wire-" + Guid.NewGuid().ToString("N"));
        var broker = new KafkaBroker(new Samsa.Kafka.Broker.Config.BrokerConfig(new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = "PLAINTEXT://127.0.0.1:0",
            ["advertised.listeners"] = $"PLAINTEXT://127.0.0.1:{proxyPort}",
            ["offsets.topic.replication.factor"] = "1",
            ["offsets.topic.num.partitions"] = "1",
            ["group.consumer.heartbeat.interval.ms"] = "500",
            ["group.consumer.min.heartbeat.interval.ms"] = "500",
            ["log.dirs"] = dir,
        }));
        var frames = new List<Frame>();
        using var stop = new CancellationTokenSource();
        Task? proxy = null;
        try
        {
            await broker.StartAsync();
            proxy = Task.Run(() => ProxyAllConnectionsAsync(listener, broker.BoundEndPoint.Port, frames, stop.Token));
            string bootstrap = $"127.0.0.1:{proxyPort}";
            const string topic = "wire-kip848";
            await Task.Run(async () =>
            {
                using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = 2, ReplicationFactor = 1 }]);
            });
            int assigned = await Task.Run(() =>
            {
                using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
                {
                    BootstrapServers = bootstrap, GroupId = "wire-kip848-g", GroupProtocol = GroupProtocol.Consumer, ClientId = "wire-kip848",
                }).Build();
                consumer.Subscribe(topic);
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (consumer.Assignment.Count < 2 && DateTime.UtcNow < deadline) consumer.Consume(TimeSpan.FromMilliseconds(200));
                int n = consumer.Assignment.Count;
                consumer.Close();
                return n;
            });
            Assert.Equal(2, assigned);
        }
        finally
        {
            await stop.CancelAsync();
            if (proxy is not null)
                try { await proxy.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception e) when (e is OperationCanceledException or TimeoutException) { }
            await broker.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }

        Frame[] seen;
        lock (frames) seen = frames.ToArray();
        var heartbeats = seen.Where(f => f.ApiKey == (short)ApiKey.ConsumerGroupHeartbeat).ToArray();
        Assert.NotEmpty(heartbeats);
        Assert.All(heartbeats, h => Assert.Equal(1, h.ApiVersion));
        var requests = heartbeats.Select(h => (ConsumerGroupHeartbeatRequest)DecodeAndReencode(h)).ToArray();
        var join = requests[0];
        Assert.Equal(0, join.MemberEpoch);
        Assert.Equal("wire-kip848-g", join.GroupId);
        Assert.False(string.IsNullOrEmpty(join.MemberId));   // v1: the client picks its id (KIP-1082)
        Assert.Equal(["wire-kip848"], join.SubscribedTopicNames!);
        Assert.NotNull(join.TopicPartitions);
        Assert.Empty(join.TopicPartitions!);
        Assert.Contains(requests, r => r.MemberEpoch == -1);  // Close() leaves the group
        if (Environment.GetEnvironmentVariable("SAMSA_WIRE_CAPTURE") is { } path)
            File.WriteAllLines(path, heartbeats.Select(f => $"{(ApiKey)f.ApiKey} v{f.ApiVersion} {Convert.ToHexString(f.Body).ToLowerInvariant()}"));
    }

    private static IKafkaMessage DecodeAndReencode(Frame f)
    {
        var reader = new KafkaReader(f.Body);
        var message = ApiMessages.ReadRequest((ApiKey)f.ApiKey, ref reader, f.ApiVersion);
        Assert.Equal(0, reader.Remaining);
        var again = new byte[message.Size(f.ApiVersion)];
        var writer = new KafkaWriter(again);
        message.Write(ref writer, f.ApiVersion);
        Assert.Equal(f.Body, again);
        return message;
    }

    /// <summary>Forwards the first client connection to the broker and back, recording each request
    /// frame's header and body; answers pass through untouched.</summary>
    private static async Task ProxyOneConnectionAsync(TcpListener listener, int brokerPort, List<Frame> frames, CancellationToken stop)
    {
        using var client = await listener.AcceptTcpClientAsync(stop);
        await RelayAsync(client, brokerPort, frames, stop);
    }

    /// <summary>Forwards every client connection (a broker that advertises the proxy's port gets all
    /// of a client's connections through it), recording as <see cref="ProxyOneConnectionAsync"/>.</summary>
    private static async Task ProxyAllConnectionsAsync(TcpListener listener, int brokerPort, List<Frame> frames, CancellationToken stop)
    {
        var relays = new List<Task>();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(stop);
                relays.Add(Task.Run(async () => { using (client) await RelayAsync(client, brokerPort, frames, stop); }));
            }
        }
        catch (OperationCanceledException) { }
        try { await Task.WhenAll(relays); } catch (OperationCanceledException) { }
    }

    private static async Task RelayAsync(TcpClient client, int brokerPort, List<Frame> frames, CancellationToken stop)
    {
        using var upstream = new TcpClient();
        await upstream.ConnectAsync(IPAddress.Loopback, brokerPort, stop);
        var c = client.GetStream();
        var u = upstream.GetStream();
        var back = u.CopyToAsync(c, stop);
        var lengthBytes = new byte[4];
        try
        {
            await RecordAsync();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException) { } // the client closed
        async Task RecordAsync()
        {
        while (!stop.IsCancellationRequested)
        {
            await c.ReadExactlyAsync(lengthBytes, stop);
            var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(lengthBytes)];
            await c.ReadExactlyAsync(frame, stop);
            short key = BinaryPrimitives.ReadInt16BigEndian(frame);
            short version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
            var reader = new KafkaReader(frame);
            var header = RequestHeader.Read(ref reader, ApiMessages.RequestHeaderVersion(key, version));
            lock (frames) frames.Add(new Frame(key, version, header, frame[reader.Position..]));
            await u.WriteAsync(lengthBytes, stop);
            await u.WriteAsync(frame, stop);
        }
        }
        upstream.Close();
        try { await back; } catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException) { }
    }
}
