using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Controller;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// Leadership moves besides the offline election: ElectLeaders (key 43) and the
/// /admin/preferred_replica_election znode, the auto leader rebalance, and controlled shutdown
/// (key 7) on both its sides — the controller that moves a stopping broker's leaderships, and the
/// stopping broker that asks for it (upstream KafkaServer.controlledShutdown).
///
/// Controller actions run under <see cref="_controllerGate"/>, which the view loop also holds
/// for its reconciliation round, so requests and the loop never act on the cluster at once
/// (upstream funnels all of them through the controller's single event thread).
/// </summary>
public sealed partial class ZkClusterMember
{
    /// <summary>Upstream's znode for the old kafka-preferred-replica-election.sh --zookeeper:
    /// {"version":1,"partitions":[{"topic":"t","partition":0}]}; the controller elects the
    /// preferred replicas it lists, then deletes it.</summary>
    public const string PreferredReplicaElectionPath = "/admin/preferred_replica_election";

    private static readonly TimeSpan FirstRebalanceDelay = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _controllerGate = new(1, 1);
    private readonly Dictionary<int, long> _shuttingDownRegistrations = [];
    private int _rebalanceEpoch = -1;
    private long _nextRebalanceMs;

    private bool ActiveControllerFor(ClusterView view) => _controller.IsActive && view.ControllerId == BrokerId;

    /// <summary>The controller's periodic duties after a reconciliation round that wrote nothing.
    /// Returns true when it wrote to ZooKeeper.</summary>
    private async Task<bool> ControllerDutiesAsync(KeeperClient zk, ClusterView view)
    {
        if (!ActiveControllerFor(view)) return false;
        await ForgetRestartedBrokersAsync(zk);
        bool wrote = await EnsureFeatureZNodeAsync(zk, view);
        wrote = await PreferredReplicaElectionZnodeAsync(zk, view) || wrote;
        return await AutoLeaderRebalanceAsync(zk, view) || wrote;
    }

    /// <summary>A broker that stopped and registered again (a new czxid: upstream's "bounced"
    /// broker, seen through its broker epoch) is no longer shutting down, even when this
    /// controller never saw it gone.</summary>
    private async Task ForgetRestartedBrokersAsync(KeeperClient zk)
    {
        foreach (int id in _controller.ShuttingDownBrokers.ToList())
        {
            var stat = await zk.ExistsAsync(ZkData.BrokerId(id));
            if (stat is null || !_shuttingDownRegistrations.TryGetValue(id, out long czxid) || czxid != stat.Czxid)
            {
                _controller.ShuttingDownBrokers.Remove(id);
                _shuttingDownRegistrations.Remove(id);
            }
        }
    }

    /// <summary>A leader writes /isr_change_notification/isr_change_N after each ISR change of its
    /// (upstream's propagateIsrChanges); upstream's controller reads them, tells the brokers and
    /// deletes them. Samsa's brokers follow the state znodes themselves, so the controller only
    /// deletes them — else one would stay in ZooKeeper for every ISR change ever made. Deleting a
    /// notification changes no state, so a deposed controller doing it harms nothing.</summary>
    internal static async Task ConsumeIsrChangeNotificationsAsync(KeeperClient zk)
    {
        List<string> children;
        try { children = await zk.GetChildrenAsync(ZkData.IsrChangeNotification); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return; }
        await Task.WhenAll(children.Where(c => c.StartsWith(ZkData.IsrChangePrefix, StringComparison.Ordinal)).Select(async c =>
        {
            try { await zk.DeleteAsync(ZkData.IsrChangeNotification + "/" + c); }
            catch (KeeperException e) when (e.Code == Code.NoNode) { }
        }));
    }

    private async Task<bool> PreferredReplicaElectionZnodeAsync(KeeperClient zk, ClusterView view)
    {
        byte[] data;
        try { (data, _) = await zk.GetDataAsync(PreferredReplicaElectionPath); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return false; }
        var partitions = DecodePreferredReplicaElection(data);
        if (partitions is null) _broker.Log($"ignoring malformed {PreferredReplicaElectionPath}");
        else
        {
            var changes = new List<(string, int, ZkData.PartitionState, int)>();
            foreach (var (topic, p) in partitions.Distinct())
            {
                var outcome = LeaderElections.Elect(view, topic, p, ElectionType.Preferred, _controller.Epoch, _controller.ShuttingDownBrokers);
                if (outcome.Next is { } next) changes.Add((topic, p, next, outcome.ZkVersion));
                else if (outcome.Error != ErrorCode.ElectionNotNeeded)
                    _broker.Log($"preferred replica election of {topic}-{p}: {outcome.Error} {outcome.Message}");
            }
            if (changes.Count > 0) await WriteStatesAsync(zk, changes);
        }
        // Upstream deletes the znode once the election it asked for was carried out.
        try { await zk.DeleteAsync(PreferredReplicaElectionPath); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { }
        return true;
    }

    /// <summary>Parses upstream's PreferredReplicaElectionZNode; null when malformed.</summary>
    public static List<(string Topic, int Partition)>? DecodePreferredReplicaElection(byte[]? data)
    {
        if (data is null) return null;
        try
        {
            if (JsonNode.Parse(data) is not JsonObject o || o["partitions"] is not JsonArray arr) return null;
            var result = new List<(string, int)>();
            foreach (var item in arr)
            {
                if (item is not JsonObject e || e["topic"]?.GetValueKind() != JsonValueKind.String
                    || e["partition"]?.GetValueKind() != JsonValueKind.Number) return null;
                result.Add(((string)e["topic"]!, (int)e["partition"]!));
            }
            return result;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException) { return null; }
    }

    /// <summary>auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds
    /// (the first check 5 s after becoming controller, as upstream) move leadership back to
    /// preferred replicas of brokers whose imbalance exceeds leader.imbalance.per.broker.percentage.</summary>
    private async Task<bool> AutoLeaderRebalanceAsync(KeeperClient zk, ClusterView view)
    {
        if (_broker.Config.Get("auto.leader.rebalance.enable") is not true) return false;
        long now = Environment.TickCount64;
        if (_rebalanceEpoch != _controller.Epoch)
        {
            _rebalanceEpoch = _controller.Epoch;
            _nextRebalanceMs = now + (long)FirstRebalanceDelay.TotalMilliseconds;
            return false;
        }
        if (now < _nextRebalanceMs) return false;
        _nextRebalanceMs = now + (long)_broker.Config.Get("leader.imbalance.check.interval.seconds")! * 1000;
        int percentage = (int)_broker.Config.Get("leader.imbalance.per.broker.percentage")!;
        var changes = new List<(string, int, ZkData.PartitionState, int)>();
        foreach (var (topic, p) in LeaderElections.RebalanceCandidates(view, percentage, _controller.ShuttingDownBrokers))
        {
            var outcome = LeaderElections.Elect(view, topic, p, ElectionType.Preferred, _controller.Epoch, _controller.ShuttingDownBrokers);
            if (outcome.Next is { } next) changes.Add((topic, p, next, outcome.ZkVersion));
        }
        if (changes.Count == 0) return false;
        _broker.Log($"auto leader rebalance: preferred replicas lead again {string.Join(", ", changes.Select(c => $"{c.Item1}-{c.Item2}"))}");
        await WriteStatesAsync(zk, changes);
        return true;
    }

    private async Task<bool> WriteStatesAsync(KeeperClient zk, List<(string Topic, int Partition, ZkData.PartitionState Next, int ZkVersion)> changes)
    {
        var ops = changes.Select(c => Op.SetData(ZkData.PartitionStatePath(c.Topic, c.Partition), ZkData.EncodePartitionState(c.Next), c.ZkVersion)).ToList();
        return await _controller.GuardedMultiAsync(zk, ops);
    }

    // ------------------------------------------------------------------ ElectLeaders (controller side)

    /// <summary>
    /// ElectLeaders on this broker (upstream ReplicaManager.electLeaders + KafkaController
    /// processReplicaLeaderElection): a broker that is not the controller answers NOT_CONTROLLER
    /// for every named partition (nothing for "all partitions"); the controller elects, writes the
    /// states and answers once this broker's metadata shows the new leaders, or REQUEST_TIMED_OUT
    /// for those still pending at the timeout (upstream DelayedElectLeader).
    /// </summary>
    public async Task<Dictionary<(string Topic, int Partition), (ErrorCode Error, string? Message)>> ElectLeadersAsync(
        IReadOnlyCollection<(string Topic, int Partition)>? partitions, ElectionType type, int timeoutMs)
    {
        var results = new Dictionary<(string, int), (ErrorCode, string?)>();
        var expected = new Dictionary<(string Topic, int Partition), int>();
        try
        {
            await _controllerGate.WaitAsync(_stop.Token);
        }
        catch (OperationCanceledException)
        {
            foreach (var tp in partitions ?? []) results[tp] = (ErrorCode.NotController, null);
            return results;
        }
        try
        {
            if (!IsController || _zk is not { } zk)
            {
                foreach (var tp in partitions ?? []) results[tp] = (ErrorCode.NotController, null);
                return results;
            }
            await ForgetRestartedBrokersAsync(zk);
            var view = await ReadViewAsync(zk);
            var targets = partitions ?? LeaderElections.AllPartitions(view).ToList();
            var changes = new List<(string, int, ZkData.PartitionState, int)>();
            foreach (var tp in targets)
            {
                var outcome = LeaderElections.Elect(view, tp.Topic, tp.Partition, type, _controller.Epoch, _controller.ShuttingDownBrokers);
                if (outcome.Next is { } next)
                {
                    changes.Add((tp.Topic, tp.Partition, next, outcome.ZkVersion));
                    expected[tp] = next.Leader;
                }
                else results[tp] = (outcome.Error, outcome.Message);
            }
            if (changes.Count > 0 && !await WriteStatesAsync(zk, changes))
            {
                // Deposed meanwhile, or a state moved under the election: the client retries.
                var error = _controller.IsActive ? ErrorCode.RequestTimedOut : ErrorCode.NotController;
                foreach (var tp in expected.Keys) results[tp] = (error, "The partition state changed during the election; retry.");
                expected.Clear();
            }
        }
        catch (KeeperException e)
        {
            foreach (var tp in expected.Keys) results[tp] = (ErrorCode.RequestTimedOut, $"ZooKeeper operation failed: {e.Code}");
            foreach (var tp in partitions ?? []) results.TryAdd(tp, (ErrorCode.RequestTimedOut, $"ZooKeeper operation failed: {e.Code}"));
            return results;
        }
        finally { _controllerGate.Release(); }

        if (expected.Count > 0)
        {
            await WaitForAsync(() => expected.All(x => _broker.Replicas.GetPartition(x.Key.Topic, x.Key.Partition)?.LeaderId == x.Value),
                TimeSpan.FromMilliseconds(Math.Max(0, timeoutMs)));
            foreach (var (tp, leader) in expected)
                results[tp] = _broker.Replicas.GetPartition(tp.Topic, tp.Partition)?.LeaderId == leader
                    ? (ErrorCode.None, null)
                    : (ErrorCode.RequestTimedOut, null);
        }
        return results;
    }

    // ------------------------------------------------------------------ ControlledShutdown (controller side)

    /// <summary>
    /// The controller's half of controlled shutdown (upstream KafkaController.doControlledShutdown):
    /// NOT_CONTROLLER on any other broker; STALE_BROKER_EPOCH when the request's broker epoch (the
    /// czxid of its registration znode, KIP-380) is older than the current registration's;
    /// BROKER_NOT_AVAILABLE for an unregistered broker. Otherwise the broker is marked shutting
    /// down, its leaderships move and it leaves the ISRs; the answer lists what it still leads.
    /// </summary>
    public async Task<(ErrorCode Error, List<(string Topic, int Partition)> Remaining)> ControlledShutdownOnControllerAsync(int brokerId, long brokerEpoch)
    {
        // A controller cut off from ZooKeeper can move nothing: say so at once rather than after
        // its writes have waited out the session timeout each (the asking broker retries, bounded
        // by controlled.shutdown.max.retries, and then stops anyway).
        if (!IsController || _zk is not { State: KeeperState.SyncConnected }) return (ErrorCode.NotController, []);
        try
        {
            if (!await _controllerGate.WaitAsync(TimeSpan.FromMilliseconds((int)_broker.Config.Get("request.timeout.ms")!), _stop.Token))
                return (ErrorCode.RequestTimedOut, []);
        }
        catch (OperationCanceledException) { return (ErrorCode.NotController, []); }
        try
        {
            if (!IsController || _zk is not { } zk) return (ErrorCode.NotController, []);
            var registration = await zk.ExistsAsync(ZkData.BrokerId(brokerId));
            if (registration is null) return (ErrorCode.BrokerNotAvailable, []);
            if (brokerEpoch != -1 && brokerEpoch < registration.Czxid) return (ErrorCode.StaleBrokerEpoch, []);
            _controller.ShuttingDownBrokers.Add(brokerId);
            _shuttingDownRegistrations[brokerId] = registration.Czxid;
            _broker.Log($"controller {BrokerId}: controlled shutdown of broker {brokerId}");
            // A state may move under us (a leader's own ISR update): re-read and retry a few times.
            for (int attempt = 0; ; attempt++)
            {
                var view = await ReadViewAsync(zk);
                var (changes, remaining) = LeaderElections.ControlledShutdown(view, brokerId, _controller.Epoch, _controller.ShuttingDownBrokers);
                if (changes.Count == 0 || await WriteStatesAsync(zk, changes)) return (ErrorCode.None, remaining);
                if (!_controller.IsActive) return (ErrorCode.NotController, []);
                if (attempt == 4)
                {
                    // Report what it led before this round; the broker retries.
                    return (ErrorCode.None, changes.Where(c => view.Topics[c.Topic].States[c.Partition].State.Leader == brokerId)
                        .Select(c => (c.Topic, c.Partition)).Concat(remaining).ToList());
                }
            }
        }
        catch (KeeperException) { return (ErrorCode.NotController, []); }
        finally
        {
            _controllerGate.Release();
            Signal();
        }
    }

    // ------------------------------------------------------------------ ControlledShutdown (broker side)

    /// <summary>
    /// This broker is stopping (upstream KafkaServer.controlledShutdown): up to
    /// controlled.shutdown.max.retries attempts, controlled.shutdown.retry.backoff.ms apart, to
    /// have the controller move its leaderships; an attempt succeeds when the controller answers
    /// without error and with no partitions left. Then it waits (briefly) until its own metadata
    /// shows the moves, so requests still arriving get NOT_LEADER_OR_FOLLOWER rather than a
    /// closed connection. Returns whether it succeeded; the broker stops either way.
    /// </summary>
    public async Task<bool> RequestControlledShutdownAsync(CancellationToken ct)
    {
        // Upstream asks only once start-up completed: a broker that never registered leads nothing.
        if (!_registered.Task.IsCompletedSuccessfully) return false;
        int attempts = (int)_broker.Config.Get("controlled.shutdown.max.retries")!;
        long backoffMs = (long)_broker.Config.Get("controlled.shutdown.retry.backoff.ms")!;
        int timeoutMs = (int)_broker.Config.Get("request.timeout.ms")!;
        long brokerEpoch = -1;
        try
        {
            // Only while connected: a read made while ZooKeeper is unreachable waits the session
            // timeout for a reconnect that will not come.
            if (_zk is { State: KeeperState.SyncConnected } zk)
            {
                using var readBound = CancellationTokenSource.CreateLinkedTokenSource(ct);
                readBound.CancelAfter(timeoutMs);
                if (await zk.ExistsAsync(ZkData.BrokerId(BrokerId), false, readBound.Token) is { } stat) brokerEpoch = stat.Czxid;
            }
        }
        catch (KeeperException) { /* unknown epoch: upstream's controller accepts -1 */ }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { /* the same */ }

        for (int attempt = 1; attempt <= attempts && !ct.IsCancellationRequested; attempt++)
        {
            var view = _view;
            int controller = view.ControllerId;
            try
            {
                (ErrorCode Error, int Remaining) answer;
                if (controller == BrokerId && IsController)
                {
                    // Bounded like a request to a remote controller (request.timeout.ms).
                    var r = await ControlledShutdownOnControllerAsync(BrokerId, brokerEpoch).WaitAsync(TimeSpan.FromMilliseconds(timeoutMs), ct);
                    answer = (r.Error, r.Remaining.Count);
                }
                else if (controller >= 0 && view.Brokers.TryGetValue(controller, out var reg)
                    && _broker.InterBroker.EndpointIn(reg) is { } ep)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    timeout.CancelAfter(timeoutMs);
                    await using var client = await _broker.InterBroker.ConnectAsync(ep.Host, ep.Port, $"broker-{BrokerId}-controlled-shutdown", timeout.Token);
                    var response = await client.SendAsync<ControlledShutdownResponse>(
                        new ControlledShutdownRequest { BrokerId = BrokerId, BrokerEpoch = brokerEpoch }, 3, ct: timeout.Token);
                    answer = ((ErrorCode)response!.ErrorCode, response.RemainingPartitions.Count);
                }
                else answer = (ErrorCode.NotController, -1);

                if (answer.Error == ErrorCode.None && answer.Remaining == 0)
                {
                    _broker.Log($"broker {BrokerId}: controlled shutdown succeeded");
                    await WaitForAsync(() => !_broker.Replicas.Topics.SelectMany(t => t.Partitions)
                        .Any(p => p.IsLeader && (p.ReplicaNodes?.Count ?? 0) > 1), TimeSpan.FromSeconds(2));
                    return true;
                }
                _broker.Log(answer.Error != ErrorCode.None
                    ? $"broker {BrokerId}: controlled shutdown attempt {attempt} failed: {answer.Error}"
                    : $"broker {BrokerId}: controlled shutdown attempt {attempt}: {answer.Remaining} partitions remaining to move");
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or KafkaProtocolException or TimeoutException)
            {
                if (ct.IsCancellationRequested) break;
                _broker.Log($"broker {BrokerId}: controlled shutdown attempt {attempt} failed: {e.Message}");
            }
            if (attempt < attempts)
            {
                try { await Task.Delay(TimeSpan.FromMilliseconds(backoffMs), ct); }
                catch (OperationCanceledException) { break; }
            }
        }
        _broker.Log($"broker {BrokerId}: controlled shutdown did not complete; proceeding with the shutdown");
        return false;
    }
}
