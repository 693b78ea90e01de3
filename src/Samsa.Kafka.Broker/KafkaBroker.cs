using System.Net;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Net;
using LogManager = Samsa.Kafka.Storage.LogManager;

namespace Samsa.Kafka.Broker;

/// <summary>
/// One Kafka broker: configuration, partition logs, purgatories, the PLAINTEXT listener and the
/// group and transaction coordinators. Without zookeeper.connect it is a single-node cluster that
/// leads every partition; with it, it joins a ZooKeeper-mode cluster (<see cref="Cluster"/>).
/// </summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private FrameListener? _listener;
    private readonly TimingWheel _timer = new();

    /// <param name="inMemory">Keep partition logs in memory (tests); otherwise they are segment
    /// files in log.dirs managed by Samsa.Kafka.Storage.</param>
    public KafkaBroker(BrokerConfig config, bool inMemory = false, Action<string>? log = null)
    {
        Config = config;
        _log = log;
        PartitionLogFactory logFactory;
        if (inMemory)
        {
            logFactory = (tp, id, cfg, dir) => new MemoryPartitionLog(dir);
        }
        else
        {
            // Recovery after an unclean stop runs on num.recovery.threads.per.data.dir threads per
            // log directory and logs each truncation and index rebuild, as upstream LogManager.loadLogs.
            var logManager = new LogManager(config.LogDirs, StoragePartitionLog.Map(config.LogConfigFor(new Dictionary<string, string>())),
                recoveryThreadsPerDataDir: (int)config.Get("num.recovery.threads.per.data.dir")!, log: log);
            _logManager = logManager;
            logFactory = (tp, id, cfg, dir) => new StoragePartitionLog(logManager, tp, id, cfg);
            logManager.BackgroundError += e => Log($"log maintenance failed: {e}");
        }
        Replicas = new ReplicaManager(config, logFactory, persistent: !inMemory);
        if (_logManager is not null)
        {
            // Topic overrides decide segment size, retention and cleaning of each log.
            _logManager.ConfigFor = tp => Replicas.GetTopic(tp.Topic) is { } t
                ? StoragePartitionLog.Map(t.LogConfig) : _logManager.DefaultConfig;
            long flushScheduler = (long)config.Get("log.flush.scheduler.interval.ms")!;
            _maintenance = _logManager.StartBackgroundTasks(
                TimeSpan.FromMilliseconds((long)config.Get("log.retention.check.interval.ms")!),
                TimeSpan.FromMilliseconds(flushScheduler >= int.MaxValue ? 60_000 : Math.Max(10, flushScheduler)),
                TimeSpan.FromMilliseconds((int)config.Get("log.flush.offset.checkpoint.interval.ms")!),
                // log.cleaner.enable=false turns compaction off; the backoff is re-read before every
                // pause, so a dynamic change (upstream's reconfigurable cleaner config) applies.
                (bool)config.Get("log.cleaner.enable")!
                    ? () => TimeSpan.FromMilliseconds((long)config.Get("log.cleaner.backoff.ms")!)
                    : null);
        }
        FetchPurgatory = new DelayedOperationPurgatory<TopicPartition>(_timer);
        Replicas.Appended += tp => FetchPurgatory.CheckAndComplete(tp);
        Groups = new Groups.GroupCoordinatorService(config, Replicas, log);
        Transactions = new Transactions.TransactionCoordinatorService(config, Replicas, Groups, persistent: !inMemory, log);
        Sasl = new Security.Sasl.SaslService(this);
        ConfigEntityHandlers.Add(Sasl.Credentials);
    }

    /// <summary>SASL listeners' mechanisms and JAAS, SCRAM credentials (Security/Sasl).</summary>
    public Security.Sasl.SaslService Sasl { get; }

    private readonly Action<string>? _log;
    private long _fileRangeBytesSent;

    /// <summary>Record bytes that Fetch responses sent from segment files with zero copy (sendfile) since start.</summary>
    public long FileRangeBytesSent => Interlocked.Read(ref _fileRangeBytesSent);
    internal void AddFileRangeBytesSent(long bytes) => Interlocked.Add(ref _fileRangeBytesSent, bytes);

    /// <summary>When false (tests, set before <see cref="StartAsync"/>) connections copy file bytes
    /// through user space, as a TLS connection must, and Fetch reads records into memory.</summary>
    internal bool ZeroCopyFileSend { get; set; } = true;
    private readonly LogManager? _logManager;
    private readonly IDisposable? _maintenance;

    public BrokerConfig Config { get; }

    /// <summary>ZooKeeper config entities besides brokers and topics (users, clients, ips): SCRAM
    /// credentials and quotas register here before <see cref="StartAsync"/>.</summary>
    public List<Security.IConfigEntityHandler> ConfigEntityHandlers { get; } = [];
    public ReplicaManager Replicas { get; }
    public DelayedOperationPurgatory<TopicPartition> FetchPurgatory { get; }
    public TimingWheel Timer => _timer;
    /// <summary>The group coordinator (consumer groups and committed offsets in __consumer_offsets).</summary>
    public Groups.GroupCoordinatorService Groups { get; }
    /// <summary>The transaction coordinator (transactional ids in __transaction_state) and producer ids.</summary>
    public Transactions.TransactionCoordinatorService Transactions { get; }
    public int BrokerId => Config.BrokerId;
    public string ClusterId => Replicas.ClusterId;

    /// <summary>The address clients are told to use (advertised.listeners, else the bound listener).</summary>
    public (string Host, int Port) AdvertisedEndpoint { get; private set; }

    /// <summary>Client connections the listener holds open (tests and metrics).</summary>
    public int ClientConnectionCount => _listener?.ConnectionCount ?? 0;

    public IPEndPoint BoundEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("broker not started");

    internal void Log(string message) => _log?.Invoke(message);

    /// <summary>Fault injection for tests: when it returns true for a request, the request is handled
    /// but its response is dropped and the connection closed, as if the network lost the answer (the
    /// client then retries — idempotent producers must not duplicate).</summary>
    public Func<Samsa.Kafka.Protocol.Messages.RequestHeader, bool>? DropResponseForTests { get; set; }

    public Task StartAsync()
    {
        bool singleNode = Config.ZookeeperConnect is not { Length: > 0 };
        Sasl.Start();
        Groups.Start(loadNow: singleNode);
        Transactions.Start(loadNow: singleNode);
        var listeners = Config.Listeners;
        var plain = listeners.FirstOrDefault(l => l.ListenerName == "PLAINTEXT") ?? listeners.First();
        var address = plain.Host.Length == 0 ? IPAddress.Any
            : IPAddress.TryParse(plain.Host, out var ip) ? ip
            : Dns.GetHostAddresses(plain.Host).First();
        var options = new ListenerOptions
        {
            Name = $"kafka {plain.ListenerName}",
            MaxFrameBytes = Config.SocketRequestMaxBytes,
            ZeroCopyFileSend = ZeroCopyFileSend,
            OnError = (c, e) => Log($"connection {c.RemoteEndPoint} closed by error: {Network.KafkaConnectionHandler.OneLine(e)}"),
        };
        _listener = new FrameListener(new IPEndPoint(address, plain.Port), new KafkaConnectionHandler(this, plain.ListenerName,
            Security.Sasl.SaslService.ProtocolOf(Config, plain.ListenerName) ?? Security.SecurityProtocol.Plaintext), options);
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
        return Config.ZookeeperConnect is { Length: > 0 } ? JoinClusterAsync() : Task.CompletedTask;
    }

    /// <summary>ZooKeeper mode (zookeeper.connect set): the cluster membership; null when single-node.</summary>
    public ZkClusterMember? Cluster { get; private set; }

    private async Task JoinClusterAsync()
    {
        var member = new ZkClusterMember(this);
        // Producer ids come from cluster-wide blocks in /latest_producer_id_block, so producers
        // bootstrapped at different brokers never share an id.
        Transactions.ProducerIds.BlockSource = floor => member.AllocateProducerIdBlockAsync(ProducerIdManager.BlockSize, floor);
        Replicas.ClusterStore = member;
        Cluster = member;
        Replication = new Replication.ReplicationManager(this);
        member.ViewApplied += Replication.OnViewApplied;
        // Group and transaction state moves with the leadership of the internal topics' partitions.
        member.ViewApplied += _ =>
        {
            Groups.SyncOwnership();
            Transactions.SyncOwnership();
        };
        Transactions.UseMarkerChannel(EndpointOf);
        await member.StartAsync();
    }

    /// <summary>ZooKeeper mode: followers' fetchers, the leaders' ISR bookkeeping and the acks=all purgatory.</summary>
    public Replication.ReplicationManager? Replication { get; private set; }

    /// <summary>The address clients use for a broker: this broker's advertised endpoint, or (ZooKeeper
    /// mode) the PLAINTEXT endpoint of the live broker's registration, else its first; null when the
    /// broker is not live.</summary>
    public (string Host, int Port)? EndpointOf(int brokerId)
    {
        if (brokerId == BrokerId) return AdvertisedEndpoint;
        if (Cluster?.View.Brokers.GetValueOrDefault(brokerId) is not { } reg) return null;
        var ep = reg.Endpoints.FirstOrDefault(x => x.ListenerName == "PLAINTEXT") ?? reg.Endpoints.FirstOrDefault();
        return ep is null ? null : (ep.Host, ep.Port);
    }

    /// <summary>
    /// A coordinator's write to an internal topic (offset commits, transaction state) is answered
    /// only once the partition's in-sync replicas have it, as upstream appends those records with
    /// acks=all: a coordinator failover then loses nothing it acknowledged. NONE at once on a single
    /// broker or with one in-sync replica; NOT_COORDINATOR when leadership moved meanwhile;
    /// COORDINATOR_NOT_AVAILABLE when the ISR did not catch up within offsets.commit.timeout.ms or
    /// shrank below min.insync.replicas (upstream's mapping of those append errors).
    /// </summary>
    public async Task<Protocol.ErrorCode> AwaitInternalWriteAsync(string topic, int partition, CancellationToken ct)
    {
        if (Replication is null) return Protocol.ErrorCode.None;
        var p = Replicas.GetPartition(topic, partition);
        if (p is null || !p.IsLeader) return Protocol.ErrorCode.NotCoordinator;
        long required = p.Log.LogEndOffset;
        if (p.HighWatermark >= required) return Protocol.ErrorCode.None;
        var outcome = new Protocol.Messages.ProduceResponse.PartitionProduceResponse();
        await Replication.AwaitReplicationAsync([new Replication.PendingAck(p, required, outcome)], (int)Config.Get("offsets.commit.timeout.ms")!, ct);
        return (Protocol.ErrorCode)outcome.ErrorCode switch
        {
            Protocol.ErrorCode.None => Protocol.ErrorCode.None,
            Protocol.ErrorCode.NotLeaderOrFollower => Protocol.ErrorCode.NotCoordinator,
            _ => Protocol.ErrorCode.CoordinatorNotAvailable,
        };
    }

    /// <summary>For tests without a network: pretend to listen at this address.</summary>
    public void SetAdvertisedEndpointForTests(string host, int port) => AdvertisedEndpoint = (host, port);

    /// <summary>False for a stop that must look like a crash to the cluster (tests): no
    /// controlled shutdown.</summary>
    public bool ControlledShutdownOnStop { get; set; } = true;

    public async ValueTask DisposeAsync()
    {
        // controlled.shutdown.enable (upstream KafkaServer.shutdown): first have the controller
        // move this broker's leaderships and take it out of the ISRs while it still serves,
        // bounded by the retries and a minute overall.
        if (Cluster is not null && Replication is not null && ControlledShutdownOnStop && Config.Get("controlled.shutdown.enable") is true)
        {
            await Replication.StopFollowingAsync();
            using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await Cluster.RequestControlledShutdownAsync(bound.Token);
        }
        // Closing the ZooKeeper session then removes /brokers/ids/<id> (and /controller) at once,
        // so the others take over without waiting for the session timeout.
        if (Cluster is not null) await Cluster.DisposeAsync();
        if (Replication is not null) await Replication.DisposeAsync();
        if (_listener is not null) await _listener.DisposeAsync();
        _timer.Dispose();
        Groups.Dispose();
        Transactions.Dispose();
        _maintenance?.Dispose();
        Replicas.Dispose();
        // Checkpoints and the clean-shutdown marker, so the next start skips recovery.
        _logManager?.Shutdown();
        _logManager?.Dispose();
    }
}
