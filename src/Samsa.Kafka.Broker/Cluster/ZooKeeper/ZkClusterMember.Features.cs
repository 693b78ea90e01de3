using Samsa.Kafka.Broker.Features;
using Samsa.Kafka.Protocol;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// Finalized features in ZooKeeper mode: the `/feature` znode (upstream FeatureZNode). The
/// controller creates it when missing and rewrites a disabled one as enabled, as upstream's
/// KafkaController.enableFeatureVersioning did on election; UpdateFeatures is carried out by the
/// controller only (upstream ZooKeeper-mode KafkaApis.handleUpdateFeatures: NOT_CONTROLLER
/// elsewhere; the admin client sends it to the controller named in Metadata and retries there).
/// </summary>
public sealed partial class ZkClusterMember
{
    /// <summary>Controller duty: a missing /feature is created with the build's default levels; a
    /// disabled one is enabled with no features (upstream: a disabled node's features do not count).</summary>
    private async Task<bool> EnsureFeatureZNodeAsync(KeeperClient zk, ClusterView view)
    {
        if (view.FeatureZkVersion >= 0 && FeatureZNode.Decode(view.FeatureData) is { Status: FeatureZNode.StatusEnabled, Version: 2 })
            return false;
        var ops = new List<Op>();
        if (view.FeatureZkVersion < 0)
        {
            ops.Add(Op.Create(FeatureZNode.Path, FeatureZNode.Encode(FeatureStore.Defaults()), ZkClientSecurity.DefaultAcls(zk, FeatureZNode.Path)));
            _broker.Log($"controller {BrokerId}: creating {FeatureZNode.Path} with {FeatureZNode.Describe(FeatureStore.Defaults())}");
        }
        else
        {
            // Version 1 (written before IBP 3.3) is rewritten as version 2, keeping an enabled
            // node's levels; a disabled node's levels are dropped, as upstream does.
            var old = FeatureZNode.Decode(view.FeatureData);
            var keep = old is { Status: FeatureZNode.StatusEnabled } ? old.Features : new Dictionary<string, short>();
            ops.Add(Op.SetData(FeatureZNode.Path, FeatureZNode.Encode(keep), view.FeatureZkVersion));
            _broker.Log($"controller {BrokerId}: rewriting {FeatureZNode.Path} as enabled version 2 with {FeatureZNode.Describe(keep)}");
        }
        return await _controller.GuardedMultiAsync(zk, ops);
    }

    /// <summary>
    /// UpdateFeatures on this broker: NOT_CONTROLLER unless it is the controller; otherwise the
    /// updates are checked against the znode's current levels (<see cref="FeatureStore.Plan"/>),
    /// written conditionally on the znode's version (guarded by the controller epoch), and the
    /// answer waits until this broker's own cache shows the new epoch (upstream
    /// waitUntilFeatureEpochOrThrow), at most timeoutMs. A failed write answers
    /// FEATURE_UPDATE_FAILED, as upstream's controller does.
    /// </summary>
    public async Task<(ErrorCode Error, string? Message)> UpdateFeaturesAsync(IReadOnlyList<FeatureStore.Update> updates, bool validateOnly, int timeoutMs)
    {
        long newEpoch;
        try { await _controllerGate.WaitAsync(_stop.Token); }
        catch (OperationCanceledException) { return (ErrorCode.NotController, null); }
        try
        {
            if (!IsController || _zk is not { } zk) return (ErrorCode.NotController, null);
            var (data, version) = await GetOrNullAsync(zk, FeatureZNode.Path);
            var content = FeatureZNode.Decode(data);
            IReadOnlyDictionary<string, short> current = content is { Status: FeatureZNode.StatusEnabled } ? content.Features
                : data is null ? FeatureStore.Defaults() : new Dictionary<string, short>();
            var (error, message, target) = FeatureStore.Plan(current, updates);
            if (error != ErrorCode.None) return (error, message);
            if (validateOnly || (data is not null && FeatureStore.Same(current, target))) return (ErrorCode.None, null);
            var op = data is null
                ? Op.Create(FeatureZNode.Path, FeatureZNode.Encode(target), ZkClientSecurity.DefaultAcls(zk, FeatureZNode.Path))
                : Op.SetData(FeatureZNode.Path, FeatureZNode.Encode(target), version);
            if (!await _controller.GuardedMultiAsync(zk, [op]))
                return (_controller.IsActive ? ErrorCode.FeatureUpdateFailed : ErrorCode.NotController, "The /feature znode changed or the controller moved during the update.");
            newEpoch = data is null ? 0 : version + 1;
            _broker.Log($"controller {BrokerId}: finalized features set to {FeatureZNode.Describe(target)} (epoch {newEpoch})");
        }
        catch (KeeperException e) { return (ErrorCode.FeatureUpdateFailed, $"ZooKeeper operation failed: {e.Code}"); }
        finally { _controllerGate.Release(); }
        if (!await WaitForAsync(() => _broker.Features.Current.Epoch >= newEpoch, TimeSpan.FromMilliseconds(Math.Max(1, timeoutMs))))
            return (ErrorCode.RequestTimedOut, $"The update was written (epoch {newEpoch}) but not yet seen by this broker within {timeoutMs} ms.");
        return (ErrorCode.None, null);
    }
}
