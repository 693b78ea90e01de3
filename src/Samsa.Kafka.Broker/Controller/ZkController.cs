using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Controller;

/// <summary>
/// The ZooKeeper-mode controller (upstream kafka.controller.KafkaController, without the requests it
/// sends to brokers: they follow ZooKeeper themselves). A broker becomes controller by creating the ephemeral
/// /controller znode together with bumping /controller_epoch in one multi (upstream
/// KafkaZkClient.registerControllerAndIncrementControllerEpoch). Every later write is a multi
/// that starts with a check of /controller_epoch's zkVersion, so a deposed controller (one whose
/// session expired while it still thought it led) can change nothing.
///
/// It is driven by the member's view loop and reconciles the layout towards the rules:
/// - a topic znode without topic_id gets one (upstream's controller assigns missing ids);
/// - a partition without a state znode gets one: leader = first live replica of the assignment,
///   ISR = the live replicas, leader_epoch 0 (upstream NewPartition → OnlinePartition);
/// - a partition whose leader is not live elects the first assigned replica that is live and in
///   the ISR, bumping leader_epoch; with none, leader becomes -1 and the ISR is kept, so the last
///   ISR member is elected when it returns (unclean.leader.election.enable=false);
/// - dead brokers leave the ISR of partitions whose leader is alive (upstream
///   removeReplicasFromIsr), leader_epoch bumped as upstream's newLeaderAndIsr does;
/// - topics under /admin/delete_topics lose their state, partition, topic and config znodes,
///   then the marker (upstream TopicDeletionManager);
/// - partition reassignments complete once their target replicas are in the ISR
///   (<see cref="PartitionReassignment"/>).
/// </summary>
public sealed class ZkController
{
    private const int MaxOpsPerMulti = 500;
    private readonly int _brokerId;
    private readonly Action<string> _log;

    public ZkController(int brokerId, Action<string> log)
    {
        _brokerId = brokerId;
        _log = log;
    }

    /// <summary>Whether a partition of the topic may elect a leader outside the ISR
    /// (unclean.leader.election.enable: topic override, else the broker's setting).</summary>
    public Func<TopicView, bool> UncleanLeaderElection { get; init; } = _ => false;

    /// <summary>Brokers in controlled shutdown (upstream ControllerContext.shuttingDownBrokerIds):
    /// never elected leader; forgotten when their registration goes or the controller changes.</summary>
    public HashSet<int> ShuttingDownBrokers { get; } = [];

    public bool IsActive { get; private set; }
    public int Epoch { get; private set; } = -1;
    public int EpochZkVersion { get; private set; } = -1;

    public void OnNewSession() { IsActive = false; ShuttingDownBrokers.Clear(); }
    public void OnSessionLost() => IsActive = false;

    /// <summary>One round: elect when there is no controller, act when this broker is it.
    /// Returns true when it wrote to ZooKeeper (the caller re-reads the view).</summary>
    public async Task<bool> StepAsync(KeeperClient zk, ClusterView view, CancellationToken ct)
    {
        if (view.ControllerId == -1) return await ElectAsync(zk);
        if (view.ControllerId != _brokerId)
        {
            if (IsActive) _log($"broker {_brokerId} is no longer the controller (broker {view.ControllerId} is)");
            IsActive = false;
            return false;
        }
        if (!IsActive) return false;   // a registration left by an earlier session of ours: wait for it to expire
        return await ReconcileAsync(zk, view);
    }

    private async Task<bool> ElectAsync(KeeperClient zk)
    {
        (byte[] Data, Keeper.Protocol.Records.Stat Stat) epochNode;
        try { epochNode = await zk.GetDataAsync(ZkData.ControllerEpoch); }
        catch (KeeperException e) when (e.Code == Code.NoNode)
        {
            // Upstream creates /controller_epoch with the initial epoch 0 on first election.
            try { await zk.CreateAsync(ZkData.ControllerEpoch, ZkData.EncodeControllerEpoch(0), ZkClientSecurity.DefaultAcls(zk, ZkData.ControllerEpoch)); }
            catch (KeeperException e2) when (e2.Code == Code.NodeExists) { }
            epochNode = await zk.GetDataAsync(ZkData.ControllerEpoch);
        }
        int epoch = ZkData.DecodeControllerEpoch(epochNode.Data) ?? 0;
        try
        {
            var results = await zk.MultiAsync(
            [
                Op.Create(ZkData.Controller, ZkData.EncodeController(_brokerId), ZkClientSecurity.DefaultAcls(zk, ZkData.Controller), CreateMode.Ephemeral),
                Op.SetData(ZkData.ControllerEpoch, ZkData.EncodeControllerEpoch(epoch + 1), epochNode.Stat.Version),
            ]);
            Epoch = epoch + 1;
            EpochZkVersion = ((OpResult.SetData)results[1]).Stat.Version;
            IsActive = true;
            ShuttingDownBrokers.Clear();
            _log($"broker {_brokerId} elected controller with epoch {Epoch}");
        }
        catch (KeeperException e) when (e.Code is Code.NodeExists or Code.BadVersion)
        {
            // Another broker won this round.
        }
        return true;
    }

    private async Task<bool> ReconcileAsync(KeeperClient zk, ClusterView view)
    {
        var live = view.Brokers.Keys.ToHashSet();
        ShuttingDownBrokers.RemoveWhere(id => !live.Contains(id));
        var ops = new List<Op>();

        foreach (var topic in view.Topics.Values)
        {
            if (view.PendingDeletes.Contains(topic.Name)) continue;
            if (topic.Id is null)
            {
                ops.Add(Op.SetData(ZkData.Topic(topic.Name), ZkData.EncodeTopic(KafkaUuid.NewTopicId(), topic.Assignment, topic.AddingReplicas, topic.RemovingReplicas), topic.AssignmentZkVersion));
                continue;
            }
            bool madeParents = false;
            foreach (var (p, replicas) in topic.Assignment)
            {
                if (!topic.States.TryGetValue(p, out var entry))
                {
                    var liveReplicas = replicas.Where(live.Contains).ToList();
                    if (liveReplicas.Count == 0) continue;   // stays offline until a replica is back
                    if (!madeParents)
                    {
                        await CreateIfMissingAsync(zk, ZkData.TopicPartitions(topic.Name));
                        madeParents = true;
                    }
                    await CreateIfMissingAsync(zk, ZkData.TopicPartition(topic.Name, p));
                    var state = new ZkData.PartitionState(liveReplicas[0], 0, liveReplicas, Epoch);
                    ops.Add(Op.Create(ZkData.PartitionStatePath(topic.Name, p), ZkData.EncodePartitionState(state), ZkClientSecurity.DefaultAcls(zk, ZkData.PartitionStatePath(topic.Name, p))));
                    continue;
                }
                var s = entry.State;
                var liveIsr = s.Isr.Where(live.Contains).ToList();
                ZkData.PartitionState? next = null;
                if (s.Leader >= 0 && live.Contains(s.Leader))
                {
                    if (liveIsr.Count < s.Isr.Count)
                        next = s with { LeaderEpoch = s.LeaderEpoch + 1, Isr = liveIsr, ControllerEpoch = Epoch };
                }
                else
                {
                    int leader = replicas.FirstOrDefault(r => liveIsr.Contains(r) && !ShuttingDownBrokers.Contains(r), -1);
                    if (leader >= 0)
                        next = new ZkData.PartitionState(leader, s.LeaderEpoch + 1, liveIsr, Epoch);
                    else if (UncleanLeaderElection(topic) && replicas.FirstOrDefault(live.Contains, -1) is int unclean and >= 0)
                    {
                        // unclean.leader.election.enable: a live replica outside the ISR leads and is
                        // the whole ISR; records only the lost ISR had are gone (upstream
                        // OfflinePartitionLeaderElectionStrategy with allowUnclean).
                        next = new ZkData.PartitionState(unclean, s.LeaderEpoch + 1, [unclean], Epoch);
                        _log($"unclean leader election of {topic.Name}-{p}: broker {unclean}, outside the ISR, leads");
                    }
                    else if (s.Leader != -1)
                        next = s with { Leader = -1, LeaderEpoch = s.LeaderEpoch + 1, ControllerEpoch = Epoch };
                }
                if (next is not null)
                    ops.Add(Op.SetData(ZkData.PartitionStatePath(topic.Name, p), ZkData.EncodePartitionState(next), entry.ZkVersion));
            }
        }

        // A topic being reassigned is deleted once the moves end (upstream marks it ineligible for deletion).
        foreach (var name in view.PendingDeletes.Where(n => !PartitionReassignment.IsReassigning(view, n)))
            await AddDeletionOpsAsync(zk, name, ops);

        // Reassignments move on only in a round with nothing else to write, so their conditional
        // writes never race this round's elections and ISR changes for the same znodes.
        if (ops.Count == 0) ops.AddRange(await PartitionReassignment.ControllerOpsAsync(zk, view, Epoch, _log));

        if (ops.Count == 0) return false;
        for (int i = 0; i < ops.Count && IsActive; i += MaxOpsPerMulti)
            await GuardedMultiAsync(zk, ops.GetRange(i, Math.Min(MaxOpsPerMulti, ops.Count - i)));
        return true;
    }

    private static async Task CreateIfMissingAsync(KeeperClient zk, string path)
    {
        try { await zk.CreateAsync(path, null, ZkClientSecurity.DefaultAcls(zk, path)); }
        catch (KeeperException e) when (e.Code == Code.NodeExists) { }
    }

    private static async Task AddDeletionOpsAsync(KeeperClient zk, string topic, List<Op> ops)
    {
        // Deepest first: states, partition znodes, the partitions folder, the topic, its config.
        foreach (var p in await ChildrenAsync(zk, ZkData.TopicPartitions(topic)))
        {
            var partitionPath = ZkData.TopicPartitions(topic) + "/" + p;
            foreach (var c in await ChildrenAsync(zk, partitionPath)) ops.Add(Op.Delete(partitionPath + "/" + c));
            ops.Add(Op.Delete(partitionPath));
        }
        if (await zk.ExistsAsync(ZkData.TopicPartitions(topic)) is not null) ops.Add(Op.Delete(ZkData.TopicPartitions(topic)));
        if (await zk.ExistsAsync(ZkData.Topic(topic)) is not null) ops.Add(Op.Delete(ZkData.Topic(topic)));
        if (await zk.ExistsAsync(ZkData.TopicConfig(topic)) is not null) ops.Add(Op.Delete(ZkData.TopicConfig(topic)));
        ops.Add(Op.Delete(ZkData.DeleteTopic(topic)));
    }

    private static async Task<List<string>> ChildrenAsync(KeeperClient zk, string path)
    {
        try { return await zk.GetChildrenAsync(path); }
        catch (KeeperException e) when (e.Code == Code.NoNode) { return []; }
    }

    /// <summary>Upstream's controller-epoch fencing: check(/controller_epoch, version) as the first op.
    /// Returns true when the ops were applied.</summary>
    internal async Task<bool> GuardedMultiAsync(KeeperClient zk, List<Op> ops)
    {
        var guarded = new List<Op>(ops.Count + 1) { Op.Check(ZkData.ControllerEpoch, EpochZkVersion) };
        guarded.AddRange(ops);
        try
        {
            await zk.MultiAsync(guarded);
            return true;
        }
        catch (KeeperException e) when (e.Results is { Count: > 0 } r && r[0] is OpResult.Error { Code: Code.BadVersion or Code.NoNode })
        {
            _log($"broker {_brokerId}: controller epoch {Epoch} was superseded; stepping down");
            IsActive = false;
        }
        catch (KeeperException e) when (e.Code is Code.NoNode or Code.NodeExists or Code.BadVersion or Code.NotEmpty)
        {
            // The layout moved under us (another writer, or a stale view): the next round re-reads.
        }
        return false;
    }
}
