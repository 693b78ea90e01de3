using System.Globalization;
using Samsa.Kafka.Protocol;
using Samsa.Keeper.Client;

namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>Where a broker in ZooKeeper mode writes dynamic broker configs (AlterConfigs and
/// IncrementalAlterConfigs on a BROKER resource): ZooKeeper holds them for the whole cluster.</summary>
public interface IClusterConfigStore
{
    /// <summary>Replaces the dynamic configs of this broker (perBroker) or the cluster default with
    /// <paramref name="configs"/> (already validated), and answers once this broker applied them.</summary>
    (ErrorCode Error, string? Message) SetBrokerConfigs(bool perBroker, IReadOnlyDictionary<string, string> configs);
}

public sealed partial class ZkClusterMember : IClusterConfigStore
{
    private readonly ConfigChangeListener _configChanges;

    /// <summary>How old a /config/changes notification must be before brokers delete it (upstream's
    /// changeExpirationMs, 15 minutes; tests shorten it).</summary>
    public TimeSpan ConfigChangeExpiration
    {
        get => _configChanges.ChangeExpiration;
        set => _configChanges.ChangeExpiration = value;
    }

    public (ErrorCode Error, string? Message) SetBrokerConfigs(bool perBroker, IReadOnlyDictionary<string, string> configs) =>
        RunAdmin(() => SetBrokerConfigsAsync(perBroker, configs), e => e);

    public async Task<(ErrorCode Error, string? Message)> SetBrokerConfigsAsync(bool perBroker, IReadOnlyDictionary<string, string> configs)
    {
        var zk = RequireSession();
        var entity = perBroker ? BrokerId.ToString(CultureInfo.InvariantCulture) : ConfigChangeListener.DefaultEntity;
        // Upstream AdminZkClient.changeBrokerConfig → changeEntityConfig: the entity znode, then the
        // sequential notification every broker follows.
        await SetOrCreateAsync(zk, ConfigChangeListener.BrokerConfigPath(entity), ZkData.EncodeConfig(configs));
        var created = await zk.CreateAsync(ZkData.ConfigChangePrefix, ZkData.EncodeConfigChange("brokers/" + entity), ZkClientSecurity.DefaultAcls(zk, ZkData.ConfigChangePrefix), CreateMode.PersistentSequential);
        long seq = ConfigChangeListener.SequenceOf(created) ?? long.MaxValue;
        // Answer once this broker processed that notification (and re-resolved its topics' settings).
        bool applied = await WaitForAsync(() => _configChanges.LastAppliedChange >= seq, AdminWait);
        return applied ? (ErrorCode.None, null) : (ErrorCode.RequestTimedOut, $"Timed out applying the dynamic configs of broker entity '{entity}'.");
    }
}
