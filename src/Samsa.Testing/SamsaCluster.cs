using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Keeper.Server;

namespace Samsa.Testing;

/// <summary>Settings of a <see cref="SamsaCluster"/>.</summary>
public sealed class SamsaClusterOptions
{
    /// <summary>Partition logs and the Keeper's data in memory (no files at all). Faster to start
    /// and to write; a broker restarted after <see cref="SamsaCluster.StopBrokerAsync"/> or
    /// <see cref="SamsaCluster.KillBrokerAsync"/> then comes back with empty logs, as after a disk
    /// replacement, and refills from the leaders. Default false: log files under a temporary
    /// directory deleted on dispose, so a restart recovers from disk as a real broker does.</summary>
    public bool InMemory { get; set; }

    /// <summary>zookeeper.session.timeout.ms of every broker: how long the cluster takes to notice a
    /// killed, paused or cut-off broker. Default 4000 (upstream's default is 18000).</summary>
    public int SessionTimeoutMs { get; set; } = 4000;

    /// <summary>More server.properties settings for every broker (applied after the cluster's own).
    /// Settings the broker does not honour stop its start with an error, as for `samsa broker`.</summary>
    public IDictionary<string, string> BrokerProperties { get; } = new Dictionary<string, string>();

    /// <summary>Where the temporary directory goes (default: the system temp directory). A tmpfs
    /// mount such as /dev/shm makes file-backed clusters nearly as fast as in-memory ones.</summary>
    public string? TempRoot { get; set; }

    /// <summary>Broker and Keeper log lines (default: none).</summary>
    public Action<string>? Log { get; set; }
}

/// <summary>
/// A Samsa cluster in this process for tests: a Keeper (ZooKeeper-protocol server) and N Kafka
/// brokers in ZooKeeper mode, the real servers on free loopback ports, with fault hooks.
/// Each broker listens behind a <see cref="FaultProxy"/> whose address it advertises (clients and
/// other brokers reach it only through it) and reaches the Keeper through another, so network
/// faults are socket faults. <c>await using var cluster = await SamsaCluster.StartAsync(brokers: 3);</c>
/// </summary>
public sealed class SamsaCluster : IAsyncDisposable
{
    private readonly SamsaClusterOptions _options;
    private readonly string _dir;
    private KeeperHost? _keeper;
    private readonly Dictionary<int, BrokerSlot> _slots = [];
    private bool _disposed;

    private sealed class BrokerSlot(int id, FaultProxy listener, FaultProxy keeperLink, int port)
    {
        public readonly int Id = id;
        public readonly FaultProxy Listener = listener;    // what the broker advertises
        public readonly FaultProxy KeeperLink = keeperLink; // the broker's way to the Keeper
        public readonly int RealPort = port;                // what the broker binds
        public readonly RequestFaults Faults = new();
        public KafkaBroker? Broker;
        public bool Isolated, Paused;
    }

    private SamsaCluster(SamsaClusterOptions options, string dir)
    {
        _options = options;
        _dir = dir;
    }

    /// <summary>The brokers' advertised addresses, comma-separated (bootstrap.servers).</summary>
    public string BootstrapServers => string.Join(",", _slots.Values.OrderBy(s => s.Id).Select(s => s.Listener.Address));

    /// <summary>The Keeper's address (zookeeper.connect; zkCli.sh and kazoo connect to it).</summary>
    public string ZooKeeperConnect => _keeper is null ? throw new InvalidOperationException("no Keeper")
        : "127.0.0.1:" + _keeper.LocalEndPoint.Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Broker ids, 1..N.</summary>
    public IReadOnlyList<int> BrokerIds => [.. _slots.Keys.Order()];

    /// <summary>The address broker <paramref name="brokerId"/> advertises ("127.0.0.1:port"); it
    /// stays the same across restarts.</summary>
    public string BootstrapServer(int brokerId) => Slot(brokerId).Listener.Address;

    /// <summary>The running broker (null while stopped or killed), for assertions on its state.</summary>
    public KafkaBroker? Broker(int brokerId) => Slot(brokerId).Broker;

    /// <summary>Whether the broker process is up (not stopped or killed).</summary>
    public bool IsRunning(int brokerId) => Slot(brokerId).Broker is not null;

    private BrokerSlot Slot(int id) => _slots.TryGetValue(id, out var s) ? s
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"no broker {id}; brokers are {string.Join(",", _slots.Keys.Order())}");

    /// <summary>Starts the Keeper and <paramref name="brokers"/> brokers and returns once every
    /// broker sees all of them.</summary>
    /// <param name="keeper">Must be true: the brokers run in ZooKeeper mode on the in-process Keeper
    /// (a broker without it is a single node that leads every partition and has no fault hooks
    /// worth the name; start a one-broker cluster instead).</param>
    public static async Task<SamsaCluster> StartAsync(int brokers = 1, bool keeper = true, SamsaClusterOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(brokers);
        if (!keeper) throw new NotSupportedException("SamsaCluster runs its brokers on the in-process Keeper (keeper: true)");
        options ??= new SamsaClusterOptions();
        string dir = Path.Combine(options.TempRoot ?? Path.GetTempPath(), "samsa-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var cluster = new SamsaCluster(options, dir);
        try
        {
            await cluster.StartKeeperAsync();
            for (int id = 1; id <= brokers; id++)
            {
                var listener = new FaultProxy(0) { Identify = FaultProxy.KafkaBrokerSource };
                var keeperLink = new FaultProxy(cluster._keeper!.LocalEndPoint.Port);
                var slot = new BrokerSlot(id, listener, keeperLink, FreeLoopbackPort());
                listener.TargetPort = slot.RealPort;
                cluster._slots[id] = slot;
            }
            // Brokers start one after another: each registers in the Keeper and the first becomes
            // the controller, as when `kafka-server-start.sh` runs on N machines in turn.
            foreach (var slot in cluster._slots.Values.OrderBy(s => s.Id)) await cluster.StartBrokerCoreAsync(slot);
            await cluster.WaitForBrokersAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task StartKeeperAsync()
    {
        // tickTime 250 allows session timeouts from 0.5 s to 5 s (2 and 20 ticks, upstream's bounds).
        int tick = Math.Max(50, Math.Min(2000, _options.SessionTimeoutMs / 16));
        _keeper = await KeeperHost.StartAsync(new KeeperConfig
        {
            DataDir = _options.InMemory ? "" : Path.Combine(_dir, "keeper"),
            ClientPort = 0, ClientPortAddress = "127.0.0.1", TickTime = tick, MaxClientCnxns = 0, ForceSync = false, AdminEnableServer = false,
        });
    }

    private static int FreeLoopbackPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task StartBrokerCoreAsync(BrokerSlot slot)
    {
        int n = _slots.Count;
        string id = slot.Id.ToString(CultureInfo.InvariantCulture);
        string internalReplicas = Math.Min(n, 3).ToString(CultureInfo.InvariantCulture);
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = id,
            ["listeners"] = "PLAINTEXT://127.0.0.1:" + slot.RealPort.ToString(CultureInfo.InvariantCulture),
            ["advertised.listeners"] = "PLAINTEXT://" + slot.Listener.Address,
            ["zookeeper.connect"] = slot.KeeperLink.Address,
            ["zookeeper.session.timeout.ms"] = _options.SessionTimeoutMs.ToString(CultureInfo.InvariantCulture),
            // Upstream defaults the connection timeout to the session timeout; a short session must
            // not make a start on a busy machine (tests in parallel) fail to reach the Keeper.
            ["zookeeper.connection.timeout.ms"] = Math.Max(30000, _options.SessionTimeoutMs).ToString(CultureInfo.InvariantCulture),
            ["log.dirs"] = Path.Combine(_dir, "broker-" + id),
            // As `samsa dev`: internal topics replicated min(N, 3) times so coordinators fail over,
            // and no wait for more members before a new group's first rebalance.
            ["offsets.topic.replication.factor"] = internalReplicas,
            ["transaction.state.log.replication.factor"] = internalReplicas,
            ["transaction.state.log.min.isr"] = Math.Min(n, 2).ToString(CultureInfo.InvariantCulture),
            ["group.initial.rebalance.delay.ms"] = "0",
            // A stop whose leaderships cannot move retries quickly.
            ["controlled.shutdown.retry.backoff.ms"] = "200",
        };
        foreach (var (k, v) in _options.BrokerProperties) props[k] = v;
        var log = _options.Log;
        var broker = new KafkaBroker(new BrokerConfig(props), inMemory: _options.InMemory,
            log: log is null ? null : m => log($"[broker {id}] {m}"))
        {
            RequestInterceptor = slot.Faults,
        };
        try
        {
            await broker.StartAsync();
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
        slot.Broker = broker;
    }

    private async Task WaitForBrokersAsync(CancellationToken ct)
    {
        var running = _slots.Values.Where(s => s.Broker is not null).ToList();
        await WaitUntilAsync(() => running.All(s => running.All(o => s.Broker!.Cluster?.IsLive(o.Id) == true)),
            TimeSpan.FromSeconds(30), "every broker sees every running broker", ct);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting until {what}");
            await Task.Delay(20, ct);
        }
    }

    // ---- topics ----

    /// <summary>Creates a topic and returns once every running broker knows a leader for each of its
    /// partitions. <paramref name="replicationFactor"/> defaults to min(brokers, 3).</summary>
    public async Task CreateTopicAsync(string name, int partitions = 1, short? replicationFactor = null,
        IReadOnlyDictionary<string, string>? configs = null, CancellationToken cancellationToken = default)
    {
        short rf = replicationFactor ?? (short)Math.Min(_slots.Count, 3);
        var via = _slots.Values.First(s => s.Broker is not null);
        await using (var wire = await KafkaWireClient.ConnectAsync("127.0.0.1", via.RealPort, cancellationToken))
        {
            wire.ClientId = "samsa-testing";
            var topic = new CreateTopicsRequest.CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = rf };
            foreach (var (k, v) in configs ?? new Dictionary<string, string>())
                topic.Configs.Add(new CreateTopicsRequest.CreatableTopicConfig { Name = k, Value = v });
            var response = await wire.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [topic], TimeoutMs = 30000 }, 7, ct: cancellationToken);
            var result = response!.Topics[0];
            if (result.ErrorCode != 0)
                throw new InvalidOperationException($"CreateTopics {name}: {(ErrorCode)result.ErrorCode} {result.ErrorMessage}");
        }
        await WaitUntilAsync(() => _slots.Values.Where(s => s.Broker is not null).All(s =>
            s.Broker!.Replicas.GetTopic(name) is { } t && t.Partitions.Count == partitions
            && s.Broker.Cluster?.View is { } view && Enumerable.Range(0, partitions).All(p => LeaderOf(s.Broker, name, p) >= 0)),
            TimeSpan.FromSeconds(30), $"every broker knows the leaders of {name}", cancellationToken);
    }

    private static int LeaderOf(KafkaBroker broker, string topic, int partition)
    {
        try
        {
            // A leader counts once the view also has it registered (a killed leader stays in the
            // partition state until the controller has moved the leadership).
            return broker.Cluster?.View is { } v && v.Topics.TryGetValue(topic, out var t) && t.States.TryGetValue(partition, out var s)
                && v.Brokers.ContainsKey(s.State.Leader) ? s.State.Leader : -1;
        }
        catch (InvalidOperationException)
        {
            return -1; // the view changed while it was read; the caller polls again
        }
    }

    /// <summary>The id of the broker leading a partition, as the cluster's view has it (-1: none).</summary>
    public int LeaderOf(string topic, int partition = 0)
    {
        var b = _slots.Values.Where(s => s.Broker is not null).Select(s => s.Broker!).FirstOrDefault()
            ?? throw new InvalidOperationException("no broker is running");
        return LeaderOf(b, topic, partition);
    }

    /// <summary>Waits until a partition has a leader other than <paramref name="notBroker"/> (after a
    /// kill, a stop or a cut) and returns it.</summary>
    public async Task<int> WaitForNewLeaderAsync(string topic, int partition, int notBroker, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        int leader = -1;
        await WaitUntilAsync(() =>
        {
            var live = _slots.Values.Where(s => s.Broker is not null && s.Id != notBroker).ToList();
            leader = live.Count == 0 ? -1 : LeaderOf(live[0].Broker!, topic, partition);
            return leader >= 0 && leader != notBroker;
        }, timeout ?? TimeSpan.FromSeconds(30), $"{topic}-{partition} has a leader other than {notBroker}", cancellationToken);
        return leader;
    }

    // ---- broker lifecycle faults ----

    /// <summary>Stops a broker as `kafka-server-stop.sh` does: controlled shutdown (its leaderships
    /// move first), then its ZooKeeper session closes. Its address refuses connections until
    /// <see cref="RestartBrokerAsync"/>.</summary>
    public async Task StopBrokerAsync(int brokerId)
    {
        var slot = Slot(brokerId);
        var broker = slot.Broker ?? throw new InvalidOperationException($"broker {brokerId} is not running");
        slot.Broker = null;
        await broker.DisposeAsync();
        slot.Listener.DropConnections();
    }

    /// <summary>Kills a broker as `kill -9` (or a power cut) would: its connections are reset, there is
    /// no controlled shutdown, and its ZooKeeper session is not closed, so the cluster notices only
    /// when the session times out (<see cref="SamsaClusterOptions.SessionTimeoutMs"/>) and then
    /// elects new leaders. Files written but not flushed stay (the page cache survives a process kill).</summary>
    public async Task KillBrokerAsync(int brokerId)
    {
        var slot = Slot(brokerId);
        var broker = slot.Broker ?? throw new InvalidOperationException($"broker {brokerId} is not running");
        slot.Broker = null;
        // Nothing of the dying broker reaches anyone: its Keeper link and every connection go first,
        // then the in-process broker is torn down without a controlled shutdown.
        slot.KeeperLink.Refusing = true;
        slot.Listener.Refusing = true;
        slot.KeeperLink.DropConnections();
        slot.Listener.DropConnections();
        foreach (var other in _slots.Values) if (other != slot) other.Listener.DropConnectionsFrom(brokerId);
        slot.Faults.Resume();
        broker.ControlledShutdownOnStop = false;
        await broker.DisposeAsync();
        slot.KeeperLink.Refusing = false;
        slot.Listener.Refusing = false;
    }

    /// <summary>Starts a stopped or killed broker again on the same address and log directory (an
    /// in-memory cluster's broker comes back empty), and waits until every running broker sees it.</summary>
    public async Task RestartBrokerAsync(int brokerId, CancellationToken cancellationToken = default)
    {
        var slot = Slot(brokerId);
        if (slot.Broker is not null) throw new InvalidOperationException($"broker {brokerId} is running; stop or kill it first");
        await StartBrokerCoreAsync(slot);
        await WaitForBrokersAsync(cancellationToken);
    }

    /// <summary>Freezes a broker as SIGSTOP would: its connections stay open but nothing moves on
    /// them — requests are not answered, its replica fetches and Keeper heartbeats stop (its session
    /// expires after the session timeout, and the cluster moves its leaderships). <see cref="ResumeBroker"/>
    /// lets everything continue where it stopped.</summary>
    public void PauseBroker(int brokerId)
    {
        var slot = Slot(brokerId);
        slot.Paused = true;
        slot.Faults.Pause();
        slot.Listener.Paused = true;
        slot.KeeperLink.Paused = true;
        foreach (var other in _slots.Values) if (other != slot) other.Listener.Stall(brokerId, true);
    }

    public void ResumeBroker(int brokerId)
    {
        var slot = Slot(brokerId);
        slot.Paused = false;
        foreach (var other in _slots.Values) if (other != slot) other.Listener.Stall(brokerId, false);
        slot.KeeperLink.Paused = false;
        slot.Listener.Paused = false;
        slot.Faults.Resume();
    }

    /// <summary>Cuts a broker off the network: no byte passes between it and clients, other brokers
    /// or the Keeper (connections are held, not closed, as on a partition), so its session expires
    /// and the others take over its leaderships while it still runs. <see cref="HealBroker"/> ends it.</summary>
    public void IsolateBroker(int brokerId)
    {
        var slot = Slot(brokerId);
        slot.Isolated = true;
        slot.Listener.Severed = _ => true;
        slot.Listener.Sever();
        foreach (var other in _slots.Values)
        {
            if (other == slot) continue;
            other.Listener.Severed = src => _slots.TryGetValue(src, out var s) && s.Isolated;
            other.Listener.Sever();
        }
        CutFromKeeper(brokerId);
    }

    /// <summary>Ends <see cref="IsolateBroker"/> or <see cref="CutFromKeeper"/>: the held connections
    /// are closed (their ends reconnect, as after an outage longer than TCP's patience).</summary>
    public void HealBroker(int brokerId)
    {
        var slot = Slot(brokerId);
        slot.Isolated = false;
        slot.Listener.Severed = _ => false;
        slot.Listener.Heal();
        foreach (var other in _slots.Values)
        {
            if (other == slot) continue;
            other.Listener.Severed = src => _slots.TryGetValue(src, out var s) && s.Isolated;
            other.Listener.Heal();
        }
        slot.KeeperLink.Severed = _ => false;
        slot.KeeperLink.Heal();
    }

    /// <summary>Cuts a broker from the Keeper only (it still serves clients and peers): its session
    /// expires after the session timeout, as when ZooKeeper is unreachable from its machine.
    /// <see cref="HealBroker"/> reconnects it.</summary>
    public void CutFromKeeper(int brokerId)
    {
        var slot = Slot(brokerId);
        slot.KeeperLink.Severed = _ => true;
        slot.KeeperLink.Sever();
    }

    /// <summary>Resets every open connection to the broker (clients' and other brokers'); they
    /// reconnect as after a network blip. Returns how many were reset.</summary>
    public int DropConnections(int brokerId) => Slot(brokerId).Listener.DropConnections();

    // ---- request faults ----

    /// <summary>The next <paramref name="count"/> requests of <paramref name="api"/> that broker
    /// <paramref name="brokerId"/> (or every broker, when null) receives from clients are answered
    /// with <paramref name="error"/> without being handled (a failed Produce appends nothing). The
    /// task completes when the last of them was answered. Supported APIs: <see cref="InjectedResponses.Supported"/>.</summary>
    /// <param name="includeBrokerRequests">Also count requests from other brokers (replica fetches).</param>
    public Task FailNextRequests(ApiKey api, int count, ErrorCode error, int? brokerId = null, bool includeBrokerRequests = false) =>
        AddRule(api, count, error, TimeSpan.Zero, brokerId, includeBrokerRequests);

    /// <summary>The next <paramref name="count"/> requests of <paramref name="api"/> are held for
    /// <paramref name="delay"/> before being handled normally (any API).</summary>
    public Task DelayNextRequests(ApiKey api, int count, TimeSpan delay, int? brokerId = null, bool includeBrokerRequests = false) =>
        AddRule(api, count, null, delay, brokerId, includeBrokerRequests);

    private Task AddRule(ApiKey api, int count, ErrorCode? error, TimeSpan delay, int? brokerId, bool includeBrokers)
    {
        // With no broker named, one counter is shared by all brokers: a client that retries on
        // another broker (after a leader change) uses up the same N.
        var rule = RequestFaults.NewRule(api, count, error, delay, includeBrokers);
        foreach (var slot in brokerId is { } id ? [Slot(id)] : _slots.Values.ToList()) slot.Faults.Add(rule);
        return rule.Used.Task;
    }

    /// <summary>Removes every pending request fault (all brokers).</summary>
    public void ClearRequestFaults()
    {
        foreach (var s in _slots.Values) s.Faults.Clear();
    }

    /// <summary>Undoes every fault hook: request faults cleared, paused brokers resumed, isolated or
    /// cut-off ones healed, stopped or killed ones restarted; returns once every broker sees all.</summary>
    public async Task ResetFaultsAsync(CancellationToken cancellationToken = default)
    {
        ClearRequestFaults();
        foreach (var slot in _slots.Values)
        {
            if (slot.Paused) ResumeBroker(slot.Id);
            HealBroker(slot.Id);
        }
        foreach (var slot in _slots.Values.Where(s => s.Broker is null).ToList()) await StartBrokerCoreAsync(slot);
        await WaitForBrokersAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var slot in _slots.Values)
        {
            slot.Faults.Resume();
            slot.Faults.Clear();
            slot.Listener.Paused = false;
            slot.KeeperLink.Paused = false;
        }
        // Brokers stop without a controlled shutdown: the cluster is going away as a whole, and
        // moving leaderships between brokers that stop next would only cost time.
        foreach (var slot in _slots.Values.OrderByDescending(s => s.Id))
        {
            if (slot.Broker is { } b)
            {
                slot.Broker = null;
                b.ControlledShutdownOnStop = false;
                try { await b.DisposeAsync(); } catch (Exception e) { _options.Log?.Invoke($"[broker {slot.Id}] stop failed: {e.Message}"); }
            }
        }
        try
        {
            foreach (var slot in _slots.Values)
            {
                await slot.Listener.DisposeAsync();
                await slot.KeeperLink.DisposeAsync();
            }
            if (_keeper is not null) await _keeper.DisposeAsync();
        }
        finally
        {
            // The temp directory goes even when a stop above failed.
            try { Directory.Delete(_dir, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
