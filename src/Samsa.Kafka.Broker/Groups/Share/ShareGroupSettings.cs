using System.Globalization;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Groups.Share;

/// <summary>
/// The share-group settings (KIP-932 broker configs), read from the broker's properties with
/// upstream's defaults: group.share.heartbeat.interval.ms 5000, group.share.session.timeout.ms
/// 45000, group.share.record.lock.duration.ms 30000, group.share.delivery.count.limit 5,
/// group.share.partition.max.record.locks 2000, group.share.max.size 200. share.auto.offset.reset
/// is a group config upstream (latest by default, or earliest); here it can be set per group
/// through <see cref="SetGroupConfig"/> and defaults to the broker property
/// share.auto.offset.reset when present.
/// </summary>
public sealed class ShareGroupSettings
{
    private readonly Dictionary<string, Dictionary<string, string>> _groupConfigs = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public int HeartbeatIntervalMs { get; init; } = 5000;
    public int SessionTimeoutMs { get; init; } = 45000;
    public int RecordLockDurationMs { get; init; } = 30000;
    public int DeliveryCountLimit { get; init; } = 5;
    public int PartitionMaxRecordLocks { get; init; } = 2000;
    public int MaxGroupSize { get; init; } = 200;
    public string DefaultAutoOffsetReset { get; init; } = "latest";

    public static ShareGroupSettings FromConfig(BrokerConfig config) => new()
    {
        HeartbeatIntervalMs = Int(config, "group.share.heartbeat.interval.ms", 5000),
        SessionTimeoutMs = Int(config, "group.share.session.timeout.ms", 45000),
        RecordLockDurationMs = Int(config, "group.share.record.lock.duration.ms", 30000),
        DeliveryCountLimit = Int(config, "group.share.delivery.count.limit", 5),
        PartitionMaxRecordLocks = Int(config, "group.share.partition.max.record.locks", 2000),
        MaxGroupSize = Int(config, "group.share.max.size", 200),
        DefaultAutoOffsetReset = config.GetString("share.auto.offset.reset") is "earliest" ? "earliest" : "latest",
    };

    private static int Int(BrokerConfig config, string key, int fallback) =>
        config.GetString(key) is { } s && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : fallback;

    /// <summary>Sets a group config (share.auto.offset.reset, group.share.*) for one group; null removes it.</summary>
    public void SetGroupConfig(string groupId, string key, string? value)
    {
        lock (_gate)
        {
            if (!_groupConfigs.TryGetValue(groupId, out var map)) _groupConfigs[groupId] = map = new(StringComparer.Ordinal);
            if (value is null) map.Remove(key); else map[key] = value;
        }
    }

    /// <summary>share.auto.offset.reset of a group: true for earliest.</summary>
    public bool ResetToEarliest(string groupId)
    {
        lock (_gate)
        {
            if (_groupConfigs.TryGetValue(groupId, out var map) && map.TryGetValue("share.auto.offset.reset", out var v))
                return v == "earliest";
        }
        return DefaultAutoOffsetReset == "earliest";
    }
}
