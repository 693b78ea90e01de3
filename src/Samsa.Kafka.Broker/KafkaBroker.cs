using System.Net;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Net;

namespace Samsa.Kafka.Broker;

/// <summary>
/// One Kafka broker: configuration, partition logs, purgatories and the PLAINTEXT listener.
/// Single-broker cluster: this broker is the controller and leads every partition.
/// </summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private FrameListener? _listener;
    private readonly TimingWheel _timer = new();

    /// <param name="logFactory">How partition logs are made; null = the default file logs in log.dirs
    /// (memory logs when <paramref name="inMemory"/>).</param>
    public KafkaBroker(BrokerConfig config, PartitionLogFactory? logFactory = null, bool inMemory = false, Action<string>? log = null)
    {
        Config = config;
        _log = log;
        logFactory ??= inMemory ? (tp, id, cfg, dir) => new MemoryPartitionLog(dir) : DefaultLogFactory;
        Replicas = new ReplicaManager(config, logFactory, persistent: !inMemory);
        FetchPurgatory = new DelayedOperationPurgatory<TopicPartition>(_timer);
        Replicas.Appended += tp => FetchPurgatory.CheckAndComplete(tp);
    }

    private readonly Action<string>? _log;

    public BrokerConfig Config { get; }
    public ReplicaManager Replicas { get; }
    public DelayedOperationPurgatory<TopicPartition> FetchPurgatory { get; }
    public TimingWheel Timer => _timer;
    public int BrokerId => Config.BrokerId;
    public string ClusterId => Replicas.ClusterId;

    /// <summary>The address clients are told to use (advertised.listeners, else the bound listener).</summary>
    public (string Host, int Port) AdvertisedEndpoint { get; private set; }

    public IPEndPoint BoundEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("broker not started");

    internal void Log(string message) => _log?.Invoke(message);

    /// <summary>The partition log implementation used when no factory is given.</summary>
    public static PartitionLogFactory DefaultLogFactory { get; set; } = (tp, id, cfg, dir) => new MemoryPartitionLog(dir);

    public Task StartAsync()
    {
        var listeners = Config.Listeners;
        var plain = listeners.FirstOrDefault(l => l.ListenerName == "PLAINTEXT") ?? listeners.First();
        var address = plain.Host.Length == 0 ? IPAddress.Any
            : IPAddress.TryParse(plain.Host, out var ip) ? ip
            : Dns.GetHostAddresses(plain.Host).First();
        var options = new ListenerOptions
        {
            MaxFrameBytes = Config.SocketRequestMaxBytes,
            OnError = (c, e) => Log($"connection {c.RemoteEndPoint} closed by error: {e}"),
        };
        _listener = new FrameListener(new IPEndPoint(address, plain.Port), new KafkaConnectionHandler(this), options);
        _listener.Start();
        var bound = _listener.LocalEndPoint;
        var advertised = Config.GetString("advertised.listeners") is { } adv
            ? ListenerEndpoint.ParseList(adv).FirstOrDefault(l => l.ListenerName == plain.ListenerName)
            : null;
        string host = advertised?.Host is { Length: > 0 } h ? h
            : plain.Host.Length > 0 && !IPAddress.Any.Equals(address) ? plain.Host
            : Dns.GetHostName();
        int port = advertised is { Port: > 0 } ? advertised.Port : bound.Port;
        AdvertisedEndpoint = (host, port);
        return Task.CompletedTask;
    }

    /// <summary>For tests without a network: pretend to listen at this address.</summary>
    public void SetAdvertisedEndpointForTests(string host, int port) => AdvertisedEndpoint = (host, port);

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null) await _listener.DisposeAsync();
        _timer.Dispose();
        Replicas.Dispose();
    }
}
