using System.Net;
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Broker.Purgatory;
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Transactions;
using Samsa.Net;
using LogManager = Samsa.Kafka.Storage.LogManager;

namespace Samsa.Kafka.Broker;

/// <summary>
/// One Kafka broker: configuration, partition logs, purgatories, its listeners and the
/// group and transaction coordinators. Without zookeeper.connect it is a single-node cluster that
/// leads every partition; with it, it joins a ZooKeeper-mode cluster (<see cref="Cluster"/>).
/// </summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private FrameListener? _listener;   // the primary listener (BoundEndPoint)
    private readonly Dictionary<string, FrameListener> _listeners = new(StringComparer.Ordinal);
    private Dictionary<string, (string Host, int Port)> _advertised = new(StringComparer.Ordinal);
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
            // AlterReplicaLogDirs copies (upstream's ReplicaAlterLogDirs quota).
            logManager.MoveBytesPerSecond = () => (long)config.Get("replica.alter.log.dirs.io.max.bytes.per.second")!;
        }
        Replicas = new ReplicaManager(config, logFactory, persistent: !inMemory);
        if (_logManager is not null)
        {
            // Topic overrides decide segment size, retention and cleaning of each log.
            _logManager.ConfigFor = tp => Replicas.GetTopic(tp.Topic) is { } t
                ? StoragePartitionLog.Map(t.LogConfig) : _logManager.DefaultConfig;
            // producer.id.expiration.ms is dynamic (cluster-wide upstream): read at every pass. As
            // upstream drops expired producers when it loads their snapshot, a first pass runs now on
            // a single node (its dynamic configs are loaded by now); in ZooKeeper mode they arrive
            // once the broker has joined, so the first timed pass is the first one.
            _logManager.ProducerIdExpirationMs = () => (int)config.Get("producer.id.expiration.ms")!;
            if (config.ZookeeperConnect is not { Length: > 0 }) _logManager.RemoveExpiredProducers();
            long flushScheduler = (long)config.Get("log.flush.scheduler.interval.ms")!;
            _maintenance = _logManager.StartBackgroundTasks(
                TimeSpan.FromMilliseconds((long)config.Get("log.retention.check.interval.ms")!),
                TimeSpan.FromMilliseconds(flushScheduler >= int.MaxValue ? 60_000 : Math.Max(10, flushScheduler)),
                TimeSpan.FromMilliseconds((int)config.Get("log.flush.offset.checkpoint.interval.ms")!),
                // log.cleaner.enable=false turns compaction off; the backoff is re-read before every
                // pause, so a dynamic change (upstream's reconfigurable cleaner config) applies.
                (bool)config.Get("log.cleaner.enable")!
                    ? () => TimeSpan.FromMilliseconds((long)config.Get("log.cleaner.backoff.ms")!)
                    : null,
                TimeSpan.FromMilliseconds((int)config.Get("producer.id.expiration.check.interval.ms")!));
        }
        FetchPurgatory = new DelayedOperationPurgatory<TopicPartition>(_timer);
        FetchSessions = new Fetch.FetchSessionCache(config.FetchSessionCacheSlots);
        Features = new Samsa.Kafka.Broker.Features.FeatureStore(inMemory ? null : config.LogDirs[0], zooKeeperMode: config.ZookeeperConnect is { Length: > 0 }, log);
        Replicas.Appended += tp => FetchPurgatory.CheckAndComplete(tp);
        Groups = new Groups.GroupCoordinatorService(config, Replicas, log);
        Transactions = new Transactions.TransactionCoordinatorService(config, Replicas, Groups, persistent: !inMemory, log);
        Transactions.Coordinator.TransactionVersionLevel = () => Features.Level("transaction.version");   // finalized transaction.version
        Transactions.MarkerReplication = AwaitMarkerReplicationAsync;   // markers count once the ISR has them (acks=-1)
        Quotas = Security.Quotas.QuotaSetup.Create(this, inMemory);
        // authorizer.class.name (Security/Acl): ACLs in ZooKeeper in a cluster (attached when the
        // broker joins), else in a file in the first log dir.
        Authorizer = Security.Acl.AclAuthorizer.FromConfig(config, log);
        if (Authorizer is not null && config.ZookeeperConnect is not { Length: > 0 })
            Authorizer.Store = new Security.Acl.FileAclStore(Authorizer, inMemory ? null : config.LogDirs[0]);
        InterBroker = new InterBrokerConnector(this);
        Sasl = new Security.Sasl.SaslService(this);
        ConfigEntityHandlers.Add(Sasl.Credentials);
        Tokens = new Security.Tokens.DelegationTokenManager(this, persistent: !inMemory);
        // Client telemetry and client-metrics subscriptions (KIP-714): Telemetry/.
        ClientTelemetry = Telemetry.ClientTelemetry.Create(this);
        // Share groups (KIP-932): Groups/Share.
        ShareCoordinator = new Groups.Share.ShareCoordinatorService(this, log);
        Shares = new Groups.Share.ShareService(this, log);
        if ((int)config.Get("samsa.metrics.port")! >= 0) Metrics = new Telemetry.BrokerMetrics(this);
        Tap = Samsa.Kafka.Broker.Tap.RequestTap.FromConfig(config);
    }

    /// <summary>The live request tap (Tap/RequestTap), served at /tap on the metrics listener; null unless samsa.tap.enabled.</summary>
    public Tap.RequestTap? Tap { get; }

    /// <summary>Prometheus metrics (Telemetry/BrokerMetrics); null unless samsa.metrics.port is set.</summary>
    public Telemetry.BrokerMetrics? Metrics { get; }

    private HttpGetListener? _metricsListener;

    /// <summary>Where /metrics is served (after <see cref="StartAsync"/>), or null.</summary>
    public IPEndPoint? MetricsEndPoint => _metricsListener?.LocalEndPoint;

    /// <summary>The share coordinator (__share_group_state) and the share-partition leaders' persister.</summary>
    public Groups.Share.ShareCoordinatorService ShareCoordinator { get; }

    /// <summary>KIP-714: client-metrics subscriptions and what clients pushed (Telemetry/).</summary>
    public Telemetry.ClientTelemetry ClientTelemetry { get; }

    /// <summary>Share groups: membership of the groups this broker coordinates, share-partition
    /// state of the partitions it leads, share sessions.</summary>
    public Groups.Share.ShareService Shares { get; }

    /// <summary>Every connection to another broker goes through this (inter-broker listener and its security).</summary>
    public InterBrokerConnector InterBroker { get; }

    /// <summary>The resolved listeners (valid after <see cref="StartAsync"/>).</summary>
    public Security.BrokerListeners? Listeners { get; private set; }

    private Security.SslPrincipalMapper? _principalMapper;

    /// <summary>The principal of a TLS client certificate on an SSL listener (upstream
    /// DefaultKafkaPrincipalBuilder: the subject DN in RFC 2253 form through ssl.principal.mapping.rules).</summary>
    internal Security.KafkaPrincipal PrincipalOf(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        string dn = Security.SslPrincipalMapper.Rfc2253(certificate.SubjectName);
        var mapper = _principalMapper ??= Security.SslPrincipalMapper.Parse(Config.GetString("ssl.principal.mapping.rules"));
        return Security.KafkaPrincipal.User(mapper.Map(dn)
            ?? throw new InvalidOperationException($"no ssl.principal.mapping.rules rule matches the client certificate subject {dn}"));
    }

    /// <summary>Client quotas, connection limits and throttling (Security/Quotas).</summary>
    public Security.Quotas.QuotaManagers Quotas { get; }

    /// <summary>The ACL authorizer, or null when authorizer.class.name is empty (no authorization).</summary>
    public Security.Acl.AclAuthorizer? Authorizer { get; }

    /// <summary>ZooKeeper mode with an authorizer: the ACL store that follows ZooKeeper.</summary>
    internal Security.Acl.ZkAclStore? ZkAcls { get; private set; }

    /// <summary>SASL listeners' mechanisms and JAAS, SCRAM credentials (Security/Sasl).</summary>
    public Security.Sasl.SaslService Sasl { get; }

    /// <summary>Delegation tokens (Security/Tokens), enabled by delegation.token.secret.key.</summary>
    public Security.Tokens.DelegationTokenManager Tokens { get; }

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
    /// <summary>The log directories' manager (null with in-memory logs): AlterReplicaLogDirs, DescribeLogDirs.</summary>
    public LogManager? LogManager => _logManager;
    /// <summary>Finalized feature levels (KIP-584): Features/FeatureStore.</summary>
    public Samsa.Kafka.Broker.Features.FeatureStore Features { get; }
    public DelayedOperationPurgatory<TopicPartition> FetchPurgatory { get; }
    /// <summary>Fetch sessions (KIP-227), max.incremental.fetch.session.cache.slots of them.</summary>
    public Fetch.FetchSessionCache FetchSessions { get; }
    public TimingWheel Timer => _timer;
    /// <summary>The group coordinator (consumer groups and committed offsets in __consumer_offsets).</summary>
    public Groups.GroupCoordinatorService Groups { get; }
    /// <summary>The transaction coordinator (transactional ids in __transaction_state) and producer ids.</summary>
    public Transactions.TransactionCoordinatorService Transactions { get; }
    public int BrokerId => Config.BrokerId;
    public string ClusterId => Replicas.ClusterId;

    /// <summary>The address clients are told to use (advertised.listeners, else the bound listener).</summary>
    public (string Host, int Port) AdvertisedEndpoint { get; private set; }

    /// <summary>Client connections the listeners hold open (tests and metrics).</summary>
    public int ClientConnectionCount => _listeners.Values.Sum(l => l.ConnectionCount);

    /// <summary>The open client connections of every listener (tests: socket options).</summary>
    internal IEnumerable<Connection> ClientConnections => _listeners.Values.SelectMany(l => l.Connections);

    /// <summary>The bound address of the primary listener: PLAINTEXT when there is one, else the
    /// inter-broker listener, else the first.</summary>
    public IPEndPoint BoundEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("broker not started");

    /// <summary>The bound address of a listener by name.</summary>
    public IPEndPoint BoundEndPointOf(string listenerName) =>
        _listeners.TryGetValue(Security.BrokerListeners.Normalize(listenerName), out var l) ? l.LocalEndPoint
            : throw new InvalidOperationException($"no listener {listenerName}");

    /// <summary>This broker's advertised endpoint on a listener, or null when it does not advertise it.</summary>
    public (string Host, int Port)? AdvertisedEndpointOf(string listenerName) =>
        _advertised.TryGetValue(listenerName, out var e) ? e : null;

    /// <summary>The sessions of the open client connections on every listener (listener, protocol,
    /// principal): a snapshot for tests and diagnostics.</summary>
    public IEnumerable<ConnectionSession> ConnectionSessions =>
        ClientConnections.Select(c => c.State).OfType<ConnectionSession>();

    /// <summary>Every advertised endpoint (the ZooKeeper registration).</summary>
    public IReadOnlyList<ListenerEndpoint> AdvertisedEndpoints =>
        Listeners?.Listeners.Where(l => _advertised.ContainsKey(l.Name)).Select(l => new ListenerEndpoint(l.Name, _advertised[l.Name].Host, _advertised[l.Name].Port)).ToList()
        ?? [new ListenerEndpoint("PLAINTEXT", AdvertisedEndpoint.Host, AdvertisedEndpoint.Port)];

    internal void Log(string message) => _log?.Invoke(message);

    /// <summary>Fault injection for tests: when it returns true for a request, the request is handled
    /// but its response is dropped and the connection closed, as if the network lost the answer (the
    /// client then retries — idempotent producers must not duplicate).</summary>
    public Func<Samsa.Kafka.Protocol.Messages.RequestHeader, bool>? DropResponseForTests { get; set; }

    /// <summary>Fault injection for tests (Samsa.Testing's FailNextRequests, DelayNextRequests,
    /// PauseBroker): asked before each request is handled; null in production.</summary>
    public IRequestInterceptor? RequestInterceptor { get; set; }

    public Task StartAsync()
    {
        // Issue #15 "never pretend": refuse what cannot be honoured before anything starts.
        Security.SecurityConfigCheck.Run(Config);
        foreach (var warning in Security.SecurityConfigCheck.NoEffectWarnings(Config)) Log(warning);
        bool singleNode = Config.ZookeeperConnect is not { Length: > 0 };
        Sasl.Start();
        Tokens.Start();
        // A SASL inter-broker listener: this broker's own connections log in with
        // sasl.mechanism.inter.broker.protocol and that listener's JAAS username/password.
        InterBroker.Authenticate ??= Security.Sasl.InterBrokerSasl.Authenticator(this);
        Groups.Start(loadNow: singleNode);
        Transactions.Start(loadNow: singleNode);
        if (singleNode) ShareCoordinator.SyncOwnership();
        BindListeners();
        if (Metrics is not null)
        {
            _metricsListener = new HttpGetListener("kafka metrics", new IPEndPoint(HttpGetListener.Resolve(Config.GetString("samsa.metrics.host")), (int)Config.Get("samsa.metrics.port")!),
                Samsa.Kafka.Broker.Tap.TapHttp.Handler(Tap, PrometheusText.Handler(Metrics.Registry)));
            _metricsListener.Start();
        }
        return Config.ZookeeperConnect is { Length: > 0 } ? JoinClusterAsync() : Task.CompletedTask;
    }

    // A key's value when server.properties (or an override) sets it, else null.
    private int? ExplicitInt(string key) => Config.StaticProps.ContainsKey(key) ? (int)Config.Get(key)! : null;

    /// <summary>
    /// Every listener in <c>listeners</c> is bound with its own security protocol (TLS options built
    /// for all of them before the first bind), or none is and the start fails with one line.
    /// </summary>
    private void BindListeners()
    {
        var listeners = Security.BrokerListeners.From(Config);
        var tls = listeners.Listeners.Where(l => l.Protocol.UsesTls())
            .ToDictionary(l => l.Name, l => new Security.SslSettings(Config, l.Name).ServerOptions(l.Protocol));
        InterBroker.Configure(Config, listeners);
        _principalMapper = Security.SslPrincipalMapper.Parse(Config.GetString("ssl.principal.mapping.rules"));
        var advertised = new Dictionary<string, (string Host, int Port)>(StringComparer.Ordinal);
        try
        {
            foreach (var l in listeners.Listeners)
            {
                var address = l.Host.Length == 0 ? IPAddress.Any
                    : IPAddress.TryParse(l.Host, out var ip) ? ip
                    : Dns.GetHostAddresses(l.Host).First();
                string name = l.Name;
                var options = new ListenerOptions
                {
                    Name = $"kafka {name}",
                    MaxFrameBytes = Config.SocketRequestMaxBytes,
                    // socket.send/receive.buffer.bytes and socket.listen.backlog.size apply when set;
                    // unset, the OS buffer autotuning and Samsa's backlog of 512 stay (compat/FINDINGS.md).
                    SocketSendBufferBytes = ExplicitInt("socket.send.buffer.bytes") ?? -1,
                    SocketReceiveBufferBytes = ExplicitInt("socket.receive.buffer.bytes") ?? -1,
                    Backlog = ExplicitInt("socket.listen.backlog.size") ?? 512,
                    ZeroCopyFileSend = ZeroCopyFileSend,
                    InlineScheduling = true,
                    Tls = tls.GetValueOrDefault(name),
                    OnError = (c, e) => Log($"connection {c.RemoteEndPoint} on listener {name} closed by error: {Network.KafkaConnectionHandler.OneLine(e)}"),
                };
                var listener = new FrameListener(new IPEndPoint(address, l.Port), new KafkaConnectionHandler(this, name, l.Protocol), options);
                listener.Start();
                _listeners[name] = listener;
                if (l.Advertised is { } adv)
                {
                    // An empty advertised host is the canonical host name, port 0 the bound port (upstream).
                    string host = adv.Host is { Length: > 0 } h ? h
                        : l.Host.Length > 0 && !IPAddress.Any.Equals(address) ? l.Host
                        : Dns.GetHostName();
                    advertised[name] = (host, adv.Port > 0 ? adv.Port : listener.LocalEndPoint.Port);
                }
            }
        }
        catch
        {
            foreach (var bound in _listeners.Values) bound.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _listeners.Clear();
            throw;
        }
        Listeners = listeners;
        _advertised = advertised;
        var primary = listeners.Find("PLAINTEXT") ?? listeners.Find(listeners.InterBrokerListenerName) ?? listeners.Listeners[0];
        _listener = _listeners[primary.Name];
        AdvertisedEndpoint = advertised.TryGetValue(primary.Name, out var p) ? p
            : advertised.Count > 0 ? advertised.Values.First() : ("localhost", _listener.LocalEndPoint.Port);
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
            ShareCoordinator.SyncOwnership();
        };
        Transactions.UseMarkerChannel(InterBroker.EndpointOf, InterBroker.ConnectAsync);
        if (Authorizer is not null) Authorizer.Store = ZkAcls = new Security.Acl.ZkAclStore(Authorizer, () => member.Session, _log);
        await member.StartAsync();
    }

    /// <summary>ZooKeeper mode: followers' fetchers, the leaders' ISR bookkeeping and the acks=all purgatory.</summary>
    public Replication.ReplicationManager? Replication { get; private set; }

    /// <summary>The address of a broker on a listener (upstream: clients are answered with endpoints
    /// of the listener their request came in on): this broker's advertised endpoint, or (ZooKeeper
    /// mode) the endpoint of that name in the live broker's registration; null when the broker is not
    /// live or has no such listener.</summary>
    public (string Host, int Port)? EndpointOf(int brokerId, string listenerName)
    {
        listenerName = Security.BrokerListeners.Normalize(listenerName);
        if (brokerId == BrokerId) return Listeners is null ? AdvertisedEndpoint : AdvertisedEndpointOf(listenerName);
        if (Cluster?.View.Brokers.GetValueOrDefault(brokerId) is not { } reg) return null;
        var ep = reg.Endpoints.FirstOrDefault(x => Security.BrokerListeners.Normalize(x.ListenerName) == listenerName);
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
    public Task<Protocol.ErrorCode> AwaitInternalWriteAsync(string topic, int partition, CancellationToken ct) =>
        AwaitInternalWriteAsync(topic, partition, -1, ct);

    /// <summary>As <see cref="AwaitInternalWriteAsync(string, int, CancellationToken)"/> for a write
    /// that ended the log at <paramref name="endOffset"/> (-1: the partition's log end now).</summary>
    public async Task<Protocol.ErrorCode> AwaitInternalWriteAsync(string topic, int partition, long endOffset, CancellationToken ct)
    {
        if (InternalWriteWaitForTests is { } hook) return await hook(topic, partition, endOffset, ct);
        if (Replication is null) return Protocol.ErrorCode.None;
        var p = Replicas.GetPartition(topic, partition);
        if (p is null || !p.IsLeader) return Protocol.ErrorCode.NotCoordinator;
        long required = endOffset >= 0 ? endOffset : p.Log.LogEndOffset;
        if (p.HighWatermark >= required) return Protocol.ErrorCode.None;
        return await AwaitIsrAsync(Replication, p, required, (int)Config.Get("offsets.commit.timeout.ms")!, ct) switch
        {
            Protocol.ErrorCode.None => Protocol.ErrorCode.None,
            Protocol.ErrorCode.NotLeaderOrFollower => Protocol.ErrorCode.NotCoordinator,
            _ => Protocol.ErrorCode.CoordinatorNotAvailable,
        };
    }

    /// <summary>Waits until every <c>__consumer_offsets</c> append a group coordinator call recorded
    /// in <paramref name="scope"/> is replicated (NONE at once when it appended nothing); the error
    /// of the first that is not (see <see cref="AwaitInternalWriteAsync(string, int, CancellationToken)"/>).</summary>
    public async ValueTask<Protocol.ErrorCode> AwaitGroupWritesAsync(Groups.GroupWriteScope scope, CancellationToken ct)
    {
        if (!scope.Wrote) return Protocol.ErrorCode.None;
        foreach (var (partition, end) in scope.Written)
        {
            var error = await AwaitInternalWriteAsync(TopicName.GroupMetadataTopic, partition, end, ct);
            if (error != Protocol.ErrorCode.None) return error;
        }
        return Protocol.ErrorCode.None;
    }

    /// <summary>
    /// A transaction marker this broker appended as a partition's leader (WriteTxnMarkers, or its own
    /// transaction coordinator's marker) counts as written only once the in-sync replicas have it:
    /// upstream appends markers with acks=-1 and request.timeout.ms (KafkaApis.handleWriteTxnMarkersRequest),
    /// so a leader failover cannot lose a marker whose transaction the coordinator already completed.
    /// The acks=-1 outcome as ReplicaManager gives it: NONE; NOT_LEADER_OR_FOLLOWER when leadership
    /// moved; NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR fell below min.insync.replicas;
    /// REQUEST_TIMED_OUT when the ISR did not catch up in time. The test hook
    /// <see cref="InternalWriteWaitForTests"/> replaces the wait here too.
    /// </summary>
    public Task<Protocol.ErrorCode> AwaitMarkerReplicationAsync(Cluster.Partition partition, long endOffset, CancellationToken ct)
    {
        if (InternalWriteWaitForTests is { } hook) return hook(partition.Topic.Name, partition.Index, endOffset, ct);
        if (Replication is null || partition.HighWatermark >= endOffset) return Task.FromResult(Protocol.ErrorCode.None);
        return AwaitIsrAsync(Replication, partition, endOffset, (int)Config.Get("request.timeout.ms")!, ct);
    }

    // The acks=-1 wait of a produce, for one internal append: the partition's error as ReplicaManager
    // would give it (callers map it to their API's codes).
    private static async Task<Protocol.ErrorCode> AwaitIsrAsync(Replication.ReplicationManager replication, Cluster.Partition p, long required,
        int timeoutMs, CancellationToken ct)
    {
        var outcome = new Protocol.Messages.ProduceResponse.PartitionProduceResponse();
        await replication.AwaitReplicationAsync([new Replication.PendingAck(p, required, outcome)], timeoutMs, ct);
        return (Protocol.ErrorCode)outcome.ErrorCode;
    }

    /// <summary>Tests: replaces the replication wait of coordinator writes (topic, partition, the
    /// write's log end or -1, cancellation): a slow or failing ISR on a single in-memory broker.</summary>
    public Func<string, int, long, CancellationToken, Task<Protocol.ErrorCode>>? InternalWriteWaitForTests { get; set; }

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
        if (ZkAcls is not null) await ZkAcls.DisposeAsync();
        await Tokens.DisposeAsync();
        if (Replication is not null) await Replication.DisposeAsync();
        foreach (var listener in _listeners.Values) await listener.DisposeAsync();
        if (_metricsListener is not null) await _metricsListener.DisposeAsync();
        _timer.Dispose();
        Groups.Dispose();
        Shares.Dispose();   // share groups: stops the housekeeping loop
        await ShareCoordinator.DisposeAsync();
        Transactions.Dispose();
        _maintenance?.Dispose();
        Replicas.Dispose();
        // Checkpoints and the clean-shutdown marker, so the next start skips recovery.
        _logManager?.Shutdown();
        _logManager?.Dispose();
    }
}
