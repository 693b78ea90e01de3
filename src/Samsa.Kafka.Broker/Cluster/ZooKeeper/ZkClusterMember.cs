using System.Globalization;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>Where a broker in ZooKeeper mode sends topic changes (CreateTopics, DeleteTopics,
/// CreatePartitions, AlterConfigs): they are written to ZooKeeper, and the answer waits until the
/// change came back through the watch and is visible in this broker's metadata.</summary>
public interface IClusterTopicStore
{
    (ErrorCode Error, string? Message, TopicState? Topic) CreateTopic(string name, int partitions, short replicationFactor,
        IReadOnlyDictionary<string, string> configs, bool validateOnly, IReadOnlyDictionary<int, List<int>>? assignment);
    (ErrorCode Error, string? Message) CreatePartitions(string name, int newTotal, bool validateOnly, IReadOnlyList<List<int>>? assignment);
    (ErrorCode Error, string? Message) DeleteTopic(string name);
    (ErrorCode Error, string? Message) SetTopicConfigs(string name, IReadOnlyDictionary<string, string> overrides);
}

/// <summary>
/// A broker's membership in a ZooKeeper-mode cluster (upstream KafkaServer + KafkaZkClient).
///
/// Design: instead of upstream's controller-to-broker UpdateMetadata / LeaderAndIsr requests,
/// every broker watches ZooKeeper itself. Persistent recursive watches (addWatch, ZooKeeper 3.6+)
/// on the subtrees of the layout (/brokers, /controller, /admin, /config, ...) mark the view
/// dirty; a single loop re-reads the layout
/// (brokers, controller, topics, partition states, topic configs, pending deletions), applies it
/// to the local ReplicaManager (which partitions this broker leads, their leader epochs, topic
/// creation and deletion) and, on the elected controller, runs the controller's reconciliation.
/// The loop also re-reads once a second, so a missed notification only delays, never loses, a
/// change. ZooKeeper is the only channel between brokers, which keeps a broker's metadata no
/// staler than its ZooKeeper session.
/// </summary>
public sealed partial class ZkClusterMember : IClusterTopicStore, IAsyncDisposable
{
    private static readonly TimeSpan Periodic = TimeSpan.FromSeconds(1);
    private static readonly string[] WatchedRoots =
        [ZkData.Brokers, ZkData.Controller, ZkData.ControllerEpoch, ZkData.Admin, ZkData.Config, ZkData.IsrChangeNotification,
         Features.FeatureZNode.Path];
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(15);
    private static readonly TimeSpan AdminWait = TimeSpan.FromSeconds(30);

    private readonly KafkaBroker _broker;
    private readonly string _connect;
    private readonly ZkClientSecurity _security;
    private readonly TimeSpan _sessionTimeout;
    private readonly TimeSpan _connectionTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _appliedGate = new();
    private TaskCompletionSource _applied = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile ClusterView _view = ClusterView.Empty;
    private volatile KeeperClient? _zk;
    private readonly ZkController _controller;
    private Task _loop = Task.CompletedTask;

    public ZkClusterMember(KafkaBroker broker)
    {
        _broker = broker;
        var config = broker.Config;
        _connect = config.ZookeeperConnect ?? throw new InvalidOperationException("zookeeper.connect is not set");
        _sessionTimeout = TimeSpan.FromMilliseconds((int)config.Get("zookeeper.session.timeout.ms")!);
        _connectionTimeout = config.Get("zookeeper.connection.timeout.ms") is int ct ? TimeSpan.FromMilliseconds(ct) : _sessionTimeout;
        // zookeeper.ssl.*, the JAAS Client section and zookeeper.set.acl (one-line refusal on what cannot be honoured)
        _security = ZkClientSecurity.FromConfig(config);
        _configChanges = new ConfigChangeListener(broker);
        _controller = new ZkController(broker.BrokerId, broker.Log)
        {
            UncleanLeaderElection = topic => topic.Configs.TryGetValue("unclean.leader.election.enable", out var v)
                ? string.Equals(v, "true", StringComparison.OrdinalIgnoreCase)
                : broker.Config.Get("unclean.leader.election.enable") is true,
        };
    }

    public int BrokerId => _broker.BrokerId;
    public ClusterView View => _view;
    public int ControllerId => _view.ControllerId;
    /// <summary>The current ZooKeeper session, or null between sessions (Replication writes ISR changes with it).</summary>
    internal KeeperClient? Session => _zk;
    /// <summary>True while this broker holds /controller with the epoch it wrote.</summary>
    public bool IsController => _controller.IsActive && _view.ControllerId == BrokerId;
    public int ControllerEpoch => _controller.Epoch;
    public IReadOnlyList<ZkData.BrokerRegistration> LiveBrokers => _view.Brokers.Values.ToList();
    public bool IsLive(int brokerId) => _view.Brokers.ContainsKey(brokerId);

    /// <summary>Raised after each applied view (tests wait on it).</summary>
    public event Action<ClusterView>? ViewApplied;

    /// <summary>Connects, registers /brokers/ids/&lt;id&gt; and applies the first view; fails when
    /// ZooKeeper cannot be reached within zookeeper.connection.timeout.ms, or when the registration
    /// of an earlier session of this broker id (a broker killed without closing its session) does
    /// not go away within that session's timeout.</summary>
    public async Task StartAsync()
    {
        _loop = Task.Run(RunAsync);
        var done = await Task.WhenAny(_registered.Task, _connected.Task, Task.Delay(_connectionTimeout));
        if (done == _registered.Task) { await _registered.Task; return; }
        if (done != _connected.Task)
            throw new TimeoutException($"Timed out waiting for connection to ZooKeeper {_connect} while registering broker {BrokerId}");
        // Connected: registering may wait for a dead predecessor's ephemeral /brokers/ids/<id> to
        // expire (RegisterBrokerAsync retries until session timeout + 2 s, as upstream retries).
        // After a kill -9 of a whole `samsa dev`, the restarted Keeper restores that session with
        // a fresh timeout, so this wait is a full session timeout long.
        var registerWait = _sessionTimeout + _connectionTimeout + TimeSpan.FromSeconds(5);
        if (await Task.WhenAny(_registered.Task, Task.Delay(registerWait)) != _registered.Task)
            throw new TimeoutException($"broker.id {BrokerId} is still registered in ZooKeeper {_connect} by another session after {registerWait.TotalSeconds:0} s");
        await _registered.Task;
    }

    private void Signal()
    {
        try { _dirty.Release(); } catch (SemaphoreFullException) { /* already dirty */ }
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            KeeperClient? zk = null;
            try
            {
                zk = _security.Track(await KeeperClient.ConnectAsync(_connect, _security.Options(_sessionTimeout), _stop.Token));
                _connected.TrySetResult();
                // Within a chroot, "/" is the chroot itself: missing means it must be created first.
                if (await zk.ExistsAsync("/") is null) await CreateChrootIfNecessaryAsync();
                var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                zk.StateChanged += s =>
                {
                    if (s is KeeperState.Expired or KeeperState.Closed or KeeperState.AuthFailed) lost.TrySetResult();
                    Signal();
                };
                await EnsurePersistentPathsAsync(zk);
                await RegisterClusterIdAsync(zk);
                await RegisterBrokerAsync(zk);
                _zk = zk;
                _controller.OnNewSession();
                await _configChanges.OnSessionAsync(zk);
                if (_broker.ZkAcls is { } acls) await acls.OnSessionAsync(zk);
                await _broker.Tokens.OnSessionAsync(zk);
                bool watching;
                try
                {
                    // Only the subtrees the view is made of: other users of the same ZooKeeper
                    // (`samsa dev` shares its Keeper with whatever the developer runs) do not wake
                    // the loop with their writes.
                    foreach (var root in WatchedRoots)
                        await zk.AddWatchAsync(root, AddWatchMode.PersistentRecursive, _ => Signal());
                    watching = true;
                }
                catch (KeeperException e) when (e.Code is Code.Unimplemented)
                {
                    // ZooKeeper before 3.6 has no addWatch: fall back to re-reading often.
                    watching = false;
                }
                _broker.Log($"broker {BrokerId} registered in ZooKeeper (session 0x{zk.SessionId:x})");
                bool first = true;
                while (!_stop.IsCancellationRequested && !lost.Task.IsCompleted)
                {
                    if (!first)
                    {
                        await _dirty.WaitAsync(watching ? Periodic : TimeSpan.FromMilliseconds(200), _stop.Token);
                        await Task.Delay(Debounce, _stop.Token);
                    }
                    try
                    {
                        await _configChanges.ProcessAsync(zk);
                        var view = await ReadViewAsync(zk);
                        bool wrote;
                        // One controller action at a time: ElectLeaders and ControlledShutdown
                        // requests act between rounds (upstream's single controller event thread).
                        await _controllerGate.WaitAsync(_stop.Token);
                        try
                        {
                            wrote = await _controller.StepAsync(zk, view, _stop.Token) || await ControllerDutiesAsync(zk, view);
                        }
                        finally { _controllerGate.Release(); }
                        if (wrote)
                        {
                            // The controller wrote something: read again before applying.
                            view = await ReadViewAsync(zk);
                        }
                        Apply(view);
                        if (first) { first = false; _registered.TrySetResult(); }
                        // after this broker applied the view, so the round trips do not delay it
                        if (ActiveControllerFor(view)) await ConsumeIsrChangeNotificationsAsync(zk);
                    }
                    catch (KeeperException e) when (e.Code is Code.ConnectionLoss or Code.OperationTimeout or Code.RequestTimeout)
                    {
                        await Task.Delay(100, _stop.Token);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
            catch (InconsistentClusterIdException e)
            {
                // Fatal, as upstream: no retry; StartAsync fails with it (the host prints one line).
                _registered.TrySetException(e);
                break;
            }
            catch (KeeperException e) when (e.Code is Code.AuthFailed or Code.SessionClosedRequireSaslAuth && !_registered.Task.IsCompleted)
            {
                // Upstream ZooKeeperClient.waitUntilConnected: ZooKeeperClientAuthFailedException ends the start
                _registered.TrySetException(new ConfigValueException($"Auth failed either before or while waiting for connection to ZooKeeper {_connect} "
                    + $"(SASL user {_security.Sasl?.Username ?? "(none)"} of the JAAS Client section refused, or the session requires SASL)"));
                break;
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                _broker.Log($"ZooKeeper session of broker {BrokerId} failed, reconnecting: {e.Message}");
                try { await Task.Delay(500, _stop.Token); } catch (OperationCanceledException) { }
            }
            finally
            {
                _controller.OnSessionLost();
                if (ReferenceEquals(_zk, zk)) _zk = null;
                if (zk is not null) await zk.DisposeAsync();
            }
        }
    }

    // Upstream KafkaZkClient creates a missing chroot path with a client that has none.
    private async Task CreateChrootIfNecessaryAsync()
    {
        var parsed = ConnectString.Parse(_connect);
        if (parsed.Chroot is not { Length: > 1 } chroot) return;
        int slash = _connect.IndexOf('/');
        await using var root = _security.Track(await KeeperClient.ConnectAsync(_connect[..slash], _security.Options(_sessionTimeout), _stop.Token));
        await CreateRecursiveAsync(root, chroot);
    }

    private static async Task CreateRecursiveAsync(KeeperClient zk, string path, byte[]? data = null)
    {
        int idx = 0;
        while (idx >= 0)
        {
            idx = path.IndexOf('/', idx + 1);
            var prefix = idx < 0 ? path : path[..idx];
            try { await zk.CreateAsync(prefix, idx < 0 ? data : null, ZkClientSecurity.DefaultAcls(zk, prefix)); }
            catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        }
    }

    // All checks in flight at once, then all missing paths parents first: a session's requests are
    // applied in order, so a child's create follows its parent's, and a first start on a fresh
    // ZooKeeper costs two round trips (and one group-committed log write) instead of ~30.
    private static async Task EnsurePersistentPathsAsync(KeeperClient zk)
    {
        var paths = new List<string>();
        foreach (var p in ZkData.PersistentPaths)
            for (int i = p.IndexOf('/', 1); ; i = p.IndexOf('/', i + 1))
            {
                var prefix = i < 0 ? p : p[..i];
                if (!paths.Contains(prefix)) paths.Add(prefix);
                if (i < 0) break;
            }
        var checks = paths.Select(p => (Path: p, Stat: zk.ExistsAsync(p))).ToList();
        var missing = new List<string>();
        foreach (var (path, stat) in checks)
            if (await stat is null) missing.Add(path);
        var creates = missing.Select(async p =>
        {
            try { await zk.CreateAsync(p, null, ZkClientSecurity.DefaultAcls(zk, p)); }
            catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        }).ToList();
        await Task.WhenAll(creates);
    }

    private async Task RegisterClusterIdAsync(KeeperClient zk)
    {
        string? id = null;
        try { id = ZkData.DecodeClusterId((await zk.GetDataAsync(ZkData.ClusterId)).Data); }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            // Upstream proposes a fresh id; proposing the one in meta.properties keeps a
            // single broker's existing logs valid when it joins a new ZooKeeper.
            var proposed = _broker.Replicas.ClusterId;
            try
            {
                await CreateRecursiveAsync(zk, "/cluster");
                await zk.CreateAsync(ZkData.ClusterId, ZkData.EncodeClusterId(proposed), ZkClientSecurity.DefaultAcls(zk, ZkData.ClusterId));
                id = proposed;
            }
            catch (KeeperException e2) when (e2.Code == Code.NodeExists)
            {
                id = ZkData.DecodeClusterId((await zk.GetDataAsync(ZkData.ClusterId)).Data);
            }
        }
        if (id is null) throw new InvalidOperationException("/cluster/id holds no cluster id");
        if (_broker.Replicas.StoredClusterId is null && id != _broker.Replicas.ClusterId)
            _broker.Log($"cluster id from ZooKeeper {id} recorded in meta.properties");
        // Written to meta.properties the first time; a mismatch later refuses the start.
        _broker.Replicas.AdoptClusterId(id);
    }

    private async Task RegisterBrokerAsync(KeeperClient zk)
    {
        // Every advertised endpoint and the listener → protocol map, as upstream's BrokerInfo (v5).
        var data = ZkData.EncodeBroker(_broker.AdvertisedEndpoints, _broker.Config.Rack,
            protocols: _broker.Listeners?.ProtocolMap.ToDictionary(kv => kv.Key, kv => Security.SecurityProtocols.Name(kv.Value)));
        var path = ZkData.BrokerId(BrokerId);
        var deadline = DateTime.UtcNow + _sessionTimeout + TimeSpan.FromSeconds(2);
        bool told = false;
        while (true)
        {
            try
            {
                await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path), CreateMode.Ephemeral);
                return;
            }
            catch (KeeperException e) when (e.Code == Code.NodeExists)
            {
                var stat = await zk.ExistsAsync(path);
                if (stat is not null && stat.EphemeralOwner == zk.SessionId) return;
                // The registration of a previous session of this broker lasts until that session
                // expires; upstream retries likewise before giving up with NodeExists.
                if (DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"broker.id {BrokerId} is already registered in ZooKeeper by another session");
                if (!told && stat is not null)
                {
                    told = true;
                    _broker.Log($"broker.id {BrokerId} is still registered by session 0x{stat.EphemeralOwner:x} (a broker that did not shut down cleanly); waiting up to {_sessionTimeout.TotalSeconds:0} s for it to expire");
                }
                await Task.Delay(250, _stop.Token);
            }
        }
    }

    private static async Task<(byte[]? Data, int Version)> GetOrNullAsync(KeeperClient zk, string path)
    {
        try
        {
            var (data, stat) = await zk.GetDataAsync(path);
            return (data, stat.Version);
        }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return (null, -1); }
    }

    private static async Task<List<string>> ChildrenOrEmptyAsync(KeeperClient zk, string path)
    {
        try { return await zk.GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
    }

    internal static async Task<ClusterView> ReadViewAsync(KeeperClient zk)
    {
        var view = new ClusterView();
        var idsTask = ChildrenOrEmptyAsync(zk, ZkData.BrokerIds);
        var controllerTask = GetOrNullAsync(zk, ZkData.Controller);
        var topicsTask = ChildrenOrEmptyAsync(zk, ZkData.Topics);
        var deletesTask = ChildrenOrEmptyAsync(zk, ZkData.DeleteTopics);
        var legacyReassignTask = zk.ExistsAsync(ZkData.ReassignPartitions);
        var featureTask = GetOrNullAsync(zk, Features.FeatureZNode.Path);
        var brokerReads = new List<(int Id, Task<(byte[]?, int)> Read)>();
        foreach (var child in await idsTask)
            if (int.TryParse(child, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id))
                brokerReads.Add((id, GetOrNullAsync(zk, ZkData.BrokerId(id))));
        var topicReads = (await topicsTask).Select(t => (Name: t, Topic: GetOrNullAsync(zk, ZkData.Topic(t)), Config: GetOrNullAsync(zk, ZkData.TopicConfig(t)))).ToList();
        foreach (var (id, read) in brokerReads)
            if (ZkData.DecodeBroker(id, (await read).Item1) is { } reg) view.Brokers[id] = reg;
        view.ControllerId = ZkData.DecodeController((await controllerTask).Data) ?? -1;
        foreach (var d in await deletesTask) view.PendingDeletes.Add(d);
        view.LegacyReassignmentPending = await legacyReassignTask is not null;
        (view.FeatureData, view.FeatureZkVersion) = await featureTask;
        var stateReads = new List<(TopicView Topic, int Partition, Task<(byte[]?, int)> Read)>();
        foreach (var (name, topicRead, configRead) in topicReads)
        {
            var (data, version) = await topicRead;
            if (ZkData.DecodeTopic(data) is not { } assignment) continue;
            var topic = new TopicView
            {
                Name = name, Id = assignment.TopicId, Assignment = assignment.Partitions, AssignmentZkVersion = version,
                Configs = ZkData.DecodeConfig((await configRead).Data) ?? [],
                AddingReplicas = assignment.AddingReplicas, RemovingReplicas = assignment.RemovingReplicas,
            };
            view.Topics[name] = topic;
            foreach (var p in assignment.Partitions.Keys)
                stateReads.Add((topic, p, GetOrNullAsync(zk, ZkData.PartitionStatePath(name, p))));
        }
        foreach (var (topic, p, read) in stateReads)
        {
            var (data, version) = await read;
            if (ZkData.DecodePartitionState(data) is { } state) topic.States[p] = new PartitionStateEntry(state, version);
        }
        return view;
    }

    /// <summary>Makes the local ReplicaManager match the view: topics created, grown, reconfigured
    /// and deleted; each partition's leader, epoch, replicas and ISR as the controller wrote them.</summary>
    private void Apply(ClusterView view)
    {
        var replicas = _broker.Replicas;
        foreach (var local in replicas.Topics)
        {
            if (!view.Topics.TryGetValue(local.Name, out var remote) || remote.Id is not { } id || id != local.Id)
            {
                replicas.DeleteTopicLocal(local.Name);
                foreach (var p in local.Partitions) _broker.FetchPurgatory.CheckAndComplete(p.TopicPartition);
            }
        }
        foreach (var remote in view.Topics.Values)
        {
            if (remote.Id is not { } id) continue;   // the controller assigns a topic id first
            // Partition numbers must be 0..n-1 to be served (upstream validates the same on create).
            int count = 0;
            while (remote.Assignment.ContainsKey(count)) count++;
            if (count == 0) continue;
            // Only assigned replicas get a log (upstream creates a log on LeaderAndIsr for a replica).
            Func<int, bool> hostedHere = p => remote.Assignment.TryGetValue(p, out var r) && r.Contains(BrokerId);
            var local = replicas.GetTopic(remote.Name) ?? replicas.CreateTopicLocal(remote.Name, id, count, remote.Configs, hostedHere);
            if (local.Partitions.Count < count) replicas.AddPartitionsLocal(local, count, hostedHere);
            if (!SameConfigs(local.Configs, remote.Configs)) replicas.SetTopicConfigsLocal(local, remote.Configs);
            foreach (var partition in local.Partitions.ToArray())
            {
                if (!remote.Assignment.TryGetValue(partition.Index, out var assigned)) continue;
                bool wasLeader = partition.IsLeader;
                int oldEpoch = partition.LeaderEpoch;
                var previouslyAssigned = partition.ReplicaNodes;
                partition.ReplicaNodes = assigned;
                if (remote.States.TryGetValue(partition.Index, out var entry))
                {
                    partition.LeaderId = entry.State.Leader;
                    partition.IsrNodes = entry.State.Isr;
                    partition.LeaderEpoch = entry.State.LeaderEpoch;
                    partition.IsLeader = entry.State.Leader == BrokerId;
                }
                else
                {
                    partition.LeaderId = -1;
                    partition.IsrNodes = [];
                    partition.IsLeader = false;
                }
                ApplyLocalHosting(partition, previouslyAssigned, assigned);
                if (wasLeader != partition.IsLeader || oldEpoch != partition.LeaderEpoch)
                    _broker.FetchPurgatory.CheckAndComplete(partition.TopicPartition);
            }
        }
        _broker.Features.ApplyZnode(view.FeatureData, view.FeatureZkVersion);
        _view = view;
        TaskCompletionSource done;
        lock (_appliedGate)
        {
            done = _applied;
            _applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        done.TrySetResult();
        ViewApplied?.Invoke(view);
    }

    private static bool SameConfigs(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    /// <summary>Waits until the applied view satisfies the condition, re-checking after each apply.</summary>
    private async Task<bool> WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        Signal();
        while (true)
        {
            Task next;
            lock (_appliedGate) next = _applied.Task;
            if (condition()) return true;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return false;
            await Task.WhenAny(next, Task.Delay(left));
        }
    }

    private KeeperClient RequireSession() =>
        _zk ?? throw new KeeperException(Code.ConnectionLoss);

    // ---------------------------------------------------------------- admin writes (any broker)

    public (ErrorCode Error, string? Message, TopicState? Topic) CreateTopic(string name, int partitions, short replicationFactor,
        IReadOnlyDictionary<string, string> configs, bool validateOnly, IReadOnlyDictionary<int, List<int>>? assignment) =>
        RunAdmin(() => CreateTopicAsync(name, partitions, replicationFactor, configs, validateOnly, assignment), e => (e.Error, e.Message, null));

    public (ErrorCode Error, string? Message) CreatePartitions(string name, int newTotal, bool validateOnly, IReadOnlyList<List<int>>? assignment) =>
        RunAdmin(() => CreatePartitionsAsync(name, newTotal, validateOnly, assignment), e => e);

    public (ErrorCode Error, string? Message) DeleteTopic(string name) =>
        RunAdmin(() => DeleteTopicAsync(name), e => e);

    public (ErrorCode Error, string? Message) SetTopicConfigs(string name, IReadOnlyDictionary<string, string> overrides) =>
        RunAdmin(() => SetTopicConfigsAsync(name, overrides), e => e);

    // The handlers call the ReplicaManager synchronously; these writes are rare admin operations,
    // so the handler thread waits for ZooKeeper here rather than every handler becoming async.
    private static T RunAdmin<T>(Func<Task<T>> op, Func<(ErrorCode Error, string Message), T> fail)
    {
        try { return Task.Run(op).GetAwaiter().GetResult(); }
        catch (KeeperException e)
        {
            return fail((ErrorCode.RequestTimedOut, $"ZooKeeper operation failed: {e.Code}"));
        }
    }

    public async Task<(ErrorCode Error, string? Message, TopicState? Topic)> CreateTopicAsync(string name, int partitions, short replicationFactor,
        IReadOnlyDictionary<string, string> configs, bool validateOnly, IReadOnlyDictionary<int, List<int>>? manual = null)
    {
        var zk = RequireSession();
        var view = _view;
        if (view.PendingDeletes.Contains(name)) return (ErrorCode.TopicAlreadyExists, $"Topic '{name}' is marked for deletion.", null);
        if (view.Topics.ContainsKey(name) || await zk.ExistsAsync(ZkData.Topic(name)) is not null)
            return (ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null);
        var unified = TopicName.Unify(name);
        var collision = view.Topics.Keys.FirstOrDefault(t => TopicName.Unify(t) == unified);
        if (collision is not null) return (ErrorCode.InvalidTopicException, $"Topic '{name}' collides with existing topic: {collision}", null);
        SortedDictionary<int, List<int>> assignment;
        if (manual is not null)
        {
            // CreateTopicsHandler already checked the manual assignment against the live brokers.
            assignment = new SortedDictionary<int, List<int>>(manual.ToDictionary(kv => kv.Key, kv => kv.Value));
        }
        else
        {
            try
            {
                assignment = ReplicaAssignment.Assign(await LiveBrokersAsync(zk), partitions, replicationFactor);
            }
            catch (ReplicaAssignment.AssignmentException e)
            {
                return (ErrorCode.InvalidReplicationFactor, e.Message, null);
            }
        }
        if (validateOnly) return (ErrorCode.None, null, null);
        var id = KafkaUuid.NewTopicId();
        // Upstream AdminZkClient.createTopicWithAssignment: configs first, then the assignment
        // znode the controller watches for.
        await SetOrCreateAsync(zk, ZkData.TopicConfig(name), ZkData.EncodeConfig(configs));
        try
        {
            await zk.CreateAsync(ZkData.Topic(name), ZkData.EncodeTopic(id, assignment), ZkClientSecurity.DefaultAcls(zk, ZkData.Topic(name)));
        }
        catch (KeeperException e) when (e.Code == Code.NodeExists)
        {
            return (ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null);
        }
        // Like upstream's DelayedCreatePartitions: answer once every partition has a leader here.
        bool ready = await WaitForAsync(() => _broker.Replicas.GetTopic(name) is { } t && t.Id == id
            && t.Partitions.Count == partitions && t.Partitions.All(p => p.LeaderId >= 0), AdminWait);
        if (!ready) return (ErrorCode.RequestTimedOut, $"Timed out waiting for the leaders of topic '{name}' to be elected.", null);
        return (ErrorCode.None, null, _broker.Replicas.GetTopic(name));
    }

    /// <summary>The registered brokers as ZooKeeper has them now (not the last applied view), as
    /// upstream's AdminZkClient reads them for an assignment: a broker that just registered counts.</summary>
    private static async Task<List<(int Id, string? Rack)>> LiveBrokersAsync(KeeperClient zk)
    {
        var result = new List<(int, string?)>();
        foreach (var child in await ChildrenOrEmptyAsync(zk, ZkData.BrokerIds))
        {
            if (!int.TryParse(child, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id)) continue;
            if (ZkData.DecodeBroker(id, (await GetOrNullAsync(zk, ZkData.BrokerId(id))).Data) is { } reg) result.Add((id, reg.Rack));
        }
        return result;
    }

    private static async Task SetOrCreateAsync(KeeperClient zk, string path, byte[] data)
    {
        try { await zk.SetDataAsync(path, data); }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            try { await zk.CreateAsync(path, data, ZkClientSecurity.DefaultAcls(zk, path)); }
            catch (KeeperException e2) when (e2.Code == Code.NodeExists) { await zk.SetDataAsync(path, data); }
        }
    }

    public async Task<(ErrorCode Error, string? Message)> DeleteTopicAsync(string name)
    {
        var zk = RequireSession();
        var topic = _broker.Replicas.GetTopic(name);
        if (!_view.Topics.ContainsKey(name) && topic is null)
            return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        // Upstream AdminZkClient.deleteTopic: a marker the controller acts on.
        try { await zk.CreateAsync(ZkData.DeleteTopic(name), null, ZkClientSecurity.DefaultAcls(zk, ZkData.DeleteTopic(name))); }
        catch (KeeperException e) when (e.Code == Code.NodeExists) { }
        bool gone = await WaitForAsync(() => !_view.Topics.ContainsKey(name) && _broker.Replicas.GetTopic(name) is null, AdminWait);
        return gone ? (ErrorCode.None, null) : (ErrorCode.RequestTimedOut, $"Timed out waiting for topic '{name}' to be deleted.");
    }

    public async Task<(ErrorCode Error, string? Message)> CreatePartitionsAsync(string name, int newTotal, bool validateOnly,
        IReadOnlyList<List<int>>? manual = null)
    {
        var zk = RequireSession();
        var (data, version) = await GetOrNullAsync(zk, ZkData.Topic(name));
        if (ZkData.DecodeTopic(data) is not { } current || _view.PendingDeletes.Contains(name))
            return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        // Upstream ZkAdminManager.createPartitions refuses while any partition of the topic moves.
        if (current.AddingReplicas.Count > 0 || current.RemovingReplicas.Count > 0)
            return (ErrorCode.ReassignmentInProgress, $"A partition reassignment is in progress for the topic '{name}'.");
        int count = current.Partitions.Count;
        if (newTotal < count)
            return (ErrorCode.InvalidPartitions, $"Topic currently has {count} partitions, which is higher than the requested {newTotal}.");
        if (newTotal == count) return (ErrorCode.InvalidPartitions, $"Topic already has {count} partitions.");
        var first = current.Partitions[0];
        var brokers = await LiveBrokersAsync(zk);
        var sorted = brokers.Select(b => b.Id).OrderBy(i => i).ToList();
        // Upstream AdminZkClient.addPartitions starts at the broker of partition 0's first replica.
        int startIndex = Math.Max(0, sorted.FindIndex(b => b >= first[0]));
        SortedDictionary<int, List<int>> added;
        if (manual is { Count: > 0 })
        {
            // Upstream AdminZkClient.validateReplicaAssignment: every new partition has the topic's
            // replication factor and no broker twice.
            added = [];
            for (int i = 0; i < manual.Count; i++) added[count + i] = manual[i];
            if (added.Values.Any(r => r.Distinct().Count() != r.Count))
                return (ErrorCode.InvalidReplicaAssignment, "Duplicate brokers not allowed in replica assignment: " +
                    string.Join(", ", added.Where(kv => kv.Value.Distinct().Count() != kv.Value.Count).Select(kv => $"{string.Join(", ", kv.Value)} for partition id {kv.Key}")) + ".");
            var inconsistent = added.Where(kv => kv.Value.Count != first.Count).ToList();
            if (inconsistent.Count > 0)
                return (ErrorCode.InvalidReplicaAssignment,
                    $"Inconsistent replication factor between partitions, partition 0 has {first.Count} while partitions [{string.Join(", ", inconsistent.Select(kv => kv.Key))}] have replication factors [{string.Join(", ", inconsistent.Select(kv => kv.Value.Count))}], respectively.");
        }
        else
        {
            try
            {
                added = ReplicaAssignment.Assign(brokers, newTotal - count, first.Count, startIndex, count);
            }
            catch (ReplicaAssignment.AssignmentException e)
            {
                return (ErrorCode.InvalidReplicationFactor, e.Message);
            }
        }
        if (validateOnly) return (ErrorCode.None, null);
        var all = new SortedDictionary<int, List<int>>(current.Partitions);
        foreach (var (p, r) in added) all[p] = r;
        try
        {
            await zk.SetDataAsync(ZkData.Topic(name), ZkData.EncodeTopic(current.TopicId ?? KafkaUuid.NewTopicId(), all), version);
        }
        catch (KeeperException e) when (e.Code is Code.BadVersion or Code.NoNode)
        {
            return (ErrorCode.InvalidPartitions, "The topic changed while partitions were being added; retry.");
        }
        bool ready = await WaitForAsync(() => _broker.Replicas.GetTopic(name) is { } t && t.Partitions.Count == newTotal
            && t.Partitions.All(p => p.LeaderId >= 0), AdminWait);
        return ready ? (ErrorCode.None, null) : (ErrorCode.RequestTimedOut, $"Timed out waiting for the new partitions of '{name}'.");
    }

    public async Task<(ErrorCode Error, string? Message)> SetTopicConfigsAsync(string name, IReadOnlyDictionary<string, string> overrides)
    {
        var zk = RequireSession();
        // Upstream AdminZkClient.changeTopicConfig: the entity znode, then a sequential change
        // notification naming it.
        await SetOrCreateAsync(zk, ZkData.TopicConfig(name), ZkData.EncodeConfig(overrides));
        await zk.CreateAsync(ZkData.ConfigChangePrefix, ZkData.EncodeConfigChange("topics/" + name), ZkClientSecurity.DefaultAcls(zk, ZkData.ConfigChangePrefix), CreateMode.PersistentSequential);
        bool applied = await WaitForAsync(() => _broker.Replicas.GetTopic(name) is { } t && SameConfigs(t.Configs, overrides), AdminWait);
        return applied ? (ErrorCode.None, null) : (ErrorCode.RequestTimedOut, $"Timed out applying the configs of '{name}'.");
    }

    /// <summary>Claims the next block of producer ids from /latest_producer_id_block (upstream
    /// ZkProducerIdManager: blocks of 1000, claimed with a conditional setData).</summary>
    /// <param name="minStart">The block starts at or above it (ids a single-node broker handed out
    /// before it joined).</param>
    public async Task<(long Start, long End)> AllocateProducerIdBlockAsync(int blockSize = 1000, long minStart = 0)
    {
        var zk = RequireSession();
        while (true)
        {
            var (data, version) = await GetOrNullAsync(zk, ZkData.LatestProducerIdBlock);
            var prev = ZkData.DecodeProducerIdBlock(data);
            // Upstream refuses to guess over a block it cannot read: starting from 0 again would hand
            // out ids that producers already hold.
            if (prev is null && data is { Length: > 0 })
                throw new InvalidDataException($"{ZkData.LatestProducerIdBlock} holds an unreadable producer id block: {System.Text.Encoding.UTF8.GetString(data)}");
            long start = Math.Max(minStart, prev is { } p ? p.End + 1 : 0);
            if (start > long.MaxValue - blockSize) throw new InvalidOperationException("producer ids exhausted");
            long end = start + blockSize - 1;
            try
            {
                await zk.SetDataAsync(ZkData.LatestProducerIdBlock, ZkData.EncodeProducerIdBlock(BrokerId, start, end), version);
                return (start, end);
            }
            catch (KeeperException e) when (e.Code == Code.BadVersion) { /* another broker won this block */ }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        // The loop may be inside a ZooKeeper call that waits for a server that has gone (each call
        // waits up to the session timeout for a reconnect). Closing the session here ends such
        // waits at once; the close itself sends closeSession only over a live connection and waits
        // a bounded time for its answer, so a stop never waits on an unreachable ZooKeeper.
        // While connected the loop stops by itself within moments (and closes the session in
        // its own time); only a loop still busy after a grace period has its session closed under it.
        if (_zk is { } zk && !_loop.IsCompleted
            && (zk.State != KeeperState.SyncConnected || await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(2))) != _loop))
            await zk.DisposeAsync();
        try { await _loop; }
        catch (OperationCanceledException) { }
        catch (KeeperException) { /* a call failed because the session was closed under it */ }
        _stop.Dispose();
    }
}
