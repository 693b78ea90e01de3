using System.Text.Json.Nodes;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Client;
using FaultProxy = Samsa.Testing.FaultProxy;

namespace Samsa.Cluster.Tests;

/// <summary>Brokers 1..n in this process, each on its own loopback port, in ZooKeeper mode under
/// a fresh chroot of one coordination server (so tests sharing the server do not meet).</summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly Dictionary<int, KafkaBroker> _brokers = [];
    private readonly Dictionary<int, int> _ports = [];
    private readonly IReadOnlyDictionary<int, string>? _racks;
    private readonly List<string> _log = [];
    private readonly Dictionary<int, FaultProxy> _proxies = [];
    private bool _viaProxies;
    private bool _observeClients;
    private IReadOnlyDictionary<string, string>? _brokerConfig;
    private Func<int, IReadOnlyDictionary<string, string>>? _perBrokerConfig;
    private readonly Dictionary<int, FaultProxy> _listenerProxies = [];
    private string? _dataDir;

    private LocalCluster(string server, string chroot, int sessionTimeoutMs, IReadOnlyDictionary<int, string>? racks)
    {
        Server = server; Chroot = chroot; SessionTimeoutMs = sessionTimeoutMs; _racks = racks;
    }

    public string Server { get; }
    public string Chroot { get; }
    public string Connect => Server + Chroot;
    public int SessionTimeoutMs { get; }
    public IReadOnlyCollection<int> LiveIds => _brokers.Keys;
    public KafkaBroker this[int id] => _brokers[id];

    /// <param name="viaProxies">Each broker reaches the server through its own cuttable proxy (crash tests).</param>
    /// <param name="observeClients">Each broker advertises a proxy in front of its listener, so a test
    /// can see which broker sent how many bytes to clients (<see cref="ListenerProxy"/>).</param>
    /// <param name="brokerConfig">More server.properties settings for every broker.</param>
    /// <param name="dataDir">Brokers keep log files under it (broker-N each) instead of in-memory logs.</param>
    /// <param name="perBrokerConfig">Settings of one broker by id, applied last (listeners, their
    /// security and certificates): e.g. "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0" with
    /// inter.broker.listener.name=SSL. <see cref="Port"/> stays the PLAINTEXT (primary) listener's.</param>
    public static async Task<LocalCluster> StartAsync(string server, int brokers, IReadOnlyDictionary<int, string>? racks = null, int sessionTimeoutMs = 6000,
        bool viaProxies = false, bool observeClients = false, IReadOnlyDictionary<string, string>? brokerConfig = null, string? dataDir = null,
        Func<int, IReadOnlyDictionary<string, string>>? perBrokerConfig = null)
    {
        var cluster = new LocalCluster(server, "/samsa-" + Guid.NewGuid().ToString("N")[..8], sessionTimeoutMs, racks)
        {
            _viaProxies = viaProxies, _observeClients = observeClients, _brokerConfig = brokerConfig, _dataDir = dataDir,
            _perBrokerConfig = perBrokerConfig,
        };
        if (viaProxies)
        {
            // The chroot exists before any broker connects through a proxy.
            await using var root = await KeeperClient.ConnectAsync(server);
            await root.CreateAsync(cluster.Chroot, null, Acls.OpenAclUnsafe);
        }
        for (int id = 1; id <= brokers; id++) await cluster.StartBrokerAsync(id);
        return cluster;
    }

    public async Task<KafkaBroker> StartBrokerAsync(int id)
    {
        int port = _ports.GetValueOrDefault(id, 0);
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = id.ToString(),
            ["listeners"] = $"PLAINTEXT://127.0.0.1:{port}",
            ["zookeeper.connect"] = (_viaProxies ? NewProxy(id) : Server) + Chroot,
            ["zookeeper.session.timeout.ms"] = SessionTimeoutMs.ToString(),
            ["zookeeper.connection.timeout.ms"] = "20000",
            ["offsets.topic.replication.factor"] = "1",
            ["transaction.state.log.replication.factor"] = "1",
            // A stop whose leaderships cannot move (no other ISR member) retries quickly here.
            ["controlled.shutdown.retry.backoff.ms"] = "200",
        };
        if (_racks?.GetValueOrDefault(id) is { } rack) props["broker.rack"] = rack;
        foreach (var (k, v) in _brokerConfig ?? new Dictionary<string, string>()) props[k] = v;
        if (_observeClients)
        {
            if (!_listenerProxies.TryGetValue(id, out var lp))
            {
                var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
                probe.Start();
                int real = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
                probe.Stop();
                _listenerProxies[id] = lp = new FaultProxy(real) { Identify = FaultProxy.KafkaBrokerSource };
            }
            props["listeners"] = $"PLAINTEXT://127.0.0.1:{lp.TargetPort}";
            props["advertised.listeners"] = $"PLAINTEXT://{lp.Address}";
        }
        if (_dataDir is not null) props["log.dirs"] = Path.Combine(_dataDir, $"broker-{id}");
        foreach (var (k, v) in _perBrokerConfig?.Invoke(id) ?? new Dictionary<string, string>()) props[k] = v;
        var broker = new KafkaBroker(new BrokerConfig(props), inMemory: _dataDir is null, log: m =>
        {
            lock (_log) _log.Add(m);
            if (Environment.GetEnvironmentVariable("SAMSA_CLUSTER_TEST_LOG") is not null) Console.Error.WriteLine($"[broker {id}] {m}");
        });
        await broker.StartAsync();
        _brokers[id] = broker;
        _ports[id] = _observeClients ? _listenerProxies[id].Port : broker.BoundEndPoint.Port;
        return broker;
    }

    /// <summary>The port of a loopback "127.0.0.1:port" address (the proxies forward to loopback).</summary>
    internal static int PortOf(string address) => int.Parse(address[(address.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    private string NewProxy(int id)
    {
        var proxy = new FaultProxy(PortOf(Server));
        _proxies[id] = proxy;
        return proxy.Address;
    }

    /// <summary>A crash: the broker's ZooKeeper connection drops without a close-session (so its
    /// ephemeral znodes stay until the session times out) and the broker stops serving.</summary>
    public async Task CrashBrokerAsync(int id)
    {
        _proxies[id].Cut();
        _brokers[id].ControlledShutdownOnStop = false;
        await StopBrokerAsync(id);
    }

    /// <summary>Stops a broker as a shutdown does: its ZooKeeper session closes and its ephemeral
    /// znodes (/brokers/ids/id, /controller when it held it) go at once.</summary>
    public async Task StopBrokerAsync(int id)
    {
        var broker = _brokers[id];
        _brokers.Remove(id);
        await broker.DisposeAsync();
    }

    /// <summary>The log directory of a broker of a cluster started with a data directory.</summary>
    public string LogDir(int id) => Path.Combine(_dataDir ?? throw new InvalidOperationException("in-memory cluster"), $"broker-{id}");

    public int Port(int id) => _ports[id];
    /// <summary>The proxy in front of a broker's listener (with observeClients).</summary>
    public FaultProxy ListenerProxy(int id) => _listenerProxies[id];
    public string Bootstrap(int id) => $"127.0.0.1:{_ports[id]}";

    public Task<KeeperClient> ZooKeeperAsync() => KeeperClient.ConnectAsync(Connect);

    public static async Task<JsonObject> ReadJsonAsync(KeeperClient zk, string path)
    {
        var (data, _) = await zk.GetDataAsync(path);
        return (JsonObject)JsonNode.Parse(data)!;
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>FindCoordinator asked of one broker until it names a coordinator (any error is retried,
    /// e.g. while the internal topic is created or a moved coordinator loads); fails after 30 s.</summary>
    public async Task<FindCoordinatorResponse> FindCoordinatorAsync(int brokerId, string key, sbyte keyType = 0)
    {
        await using var c = await KafkaWireClient.ConnectAsync("127.0.0.1", Port(brokerId));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var r = (await c.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = key, KeyType = keyType }, 3))!;
            if (r.ErrorCode == 0) return r;
            Xunit.Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"FindCoordinator({key}) at broker {brokerId} kept answering {r.ErrorCode}");
            await Task.Delay(100);
        }
    }

    /// <summary>Metadata v12 straight from one broker.</summary>
    public async Task<MetadataResponse> MetadataAsync(int brokerId, params string[] topics)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", _ports[brokerId]);
        return (await client.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = topics.Length == 0 ? null : topics.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
            AllowAutoTopicCreation = false,
        }, 12))!;
    }

    /// <summary>Metadata from one broker once it shows every partition of the topic with a leader
    /// (brokers learn of a new topic from their own watch, a moment apart).</summary>
    public async Task<MetadataResponse> LedMetadataAsync(int brokerId, string topic, int partitions)
    {
        MetadataResponse md = null!;
        await WaitUntilAsync(async () =>
        {
            md = await MetadataAsync(brokerId, topic);
            return md.Topics[0].ErrorCode == 0 && md.Topics[0].Partitions.Count == partitions && md.Topics[0].Partitions.All(p => p.LeaderId >= 0);
        }, TimeSpan.FromSeconds(10), $"broker {brokerId} knows the leaders of {topic}");
        return md;
    }

    public string Log() { lock (_log) return string.Join("\n", _log); }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _brokers.Keys.ToList()) await StopBrokerAsync(id);
        foreach (var p in _proxies.Values) await p.DisposeAsync();
        foreach (var p in _listenerProxies.Values) await p.DisposeAsync();
    }
}
