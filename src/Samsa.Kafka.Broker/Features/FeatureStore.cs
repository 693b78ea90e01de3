using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Features;

/// <summary>
/// The finalized feature levels this broker acts on and reports in ApiVersions (KIP-584), with
/// their epoch — upstream's FinalizedFeatureCache.
///
/// ZooKeeper mode (upstream 3.x ZK brokers): the levels are the `/feature` znode's, the epoch is
/// that znode's version; every broker re-reads the znode with its cluster view (a persistent
/// watch on /feature wakes the view loop), and the controller creates the znode with the build's
/// defaults (<see cref="BrokerFeatures.All"/>) when it is missing, as upstream's controller did
/// on election (KafkaController.enableFeatureVersioning). Until a broker has seen the znode it
/// reports the build's defaults with epoch -1 (upstream would report no finalized features).
///
/// Single-node mode (no zookeeper.connect): the broker is its own controller; the levels and
/// epoch are kept in `feature.json` in the first log directory (the znode's JSON plus the epoch)
/// so UpdateFeatures survives a restart; without log dirs (in-memory tests) only in memory.
/// </summary>
public sealed class FeatureStore
{
    public sealed record Snapshot(IReadOnlyDictionary<string, short> Levels, long Epoch);

    public const string FileName = "feature.json";
    private readonly string? _file;
    private readonly Action<string>? _log;
    private readonly object _commitGate = new();
    private volatile Snapshot _current;

    /// <param name="directory">Single-node mode: where feature.json lives (null: memory only).</param>
    /// <param name="zooKeeperMode">The levels come from /feature (epoch -1 until it is seen).</param>
    public FeatureStore(string? directory, bool zooKeeperMode, Action<string>? log = null)
    {
        _log = log;
        _file = zooKeeperMode || directory is null ? null : Path.Combine(directory, FileName);
        _current = new Snapshot(Defaults(), -1);
        if (zooKeeperMode) return;
        if (_file is null) { _current = _current with { Epoch = 0 }; return; }
        if (!File.Exists(_file)) { _current = _current with { Epoch = 0 }; return; }
        var bytes = File.ReadAllBytes(_file);
        var content = FeatureZNode.Decode(bytes)
            ?? throw new InvalidDataException($"{_file} is not a feature file (expected {{\"version\":2,\"status\":1,\"features\":{{...}},\"epoch\":N}})");
        _current = new Snapshot(content.Status == FeatureZNode.StatusEnabled ? content.Features : new Dictionary<string, short>(),
            FeatureZNode.ReadEpoch(bytes));
    }

    public Snapshot Current => _current;

    /// <summary>Raised after the finalized levels changed (previous, new), on the thread that applied
    /// them — upstream's BrokerMetadataPublisher reacting to a features delta.</summary>
    public event Action<Snapshot, Snapshot>? Changed;

    /// <summary>The finalized level of a feature (0 when not finalized: the feature is off).</summary>
    public short Level(string name) => _current.Levels.GetValueOrDefault(name);

    public static Dictionary<string, short> Defaults() =>
        BrokerFeatures.All.Where(f => f.FinalizedLevel > 0).ToDictionary(f => f.Name, f => f.FinalizedLevel, StringComparer.Ordinal);

    /// <summary>ZooKeeper mode: the `/feature` znode as the view loop read it (null data: absent).</summary>
    internal void ApplyZnode(byte[]? data, int zkVersion)
    {
        var current = _current;
        if (data is null)
        {
            if (current.Epoch >= 0) _log?.Invoke("/feature znode is gone; keeping the finalized features of epoch " + current.Epoch);
            return;
        }
        if (zkVersion == current.Epoch) return;
        if (FeatureZNode.Decode(data) is not { } content)
        {
            _log?.Invoke($"/feature znode (version {zkVersion}) does not parse; keeping the finalized features of epoch {current.Epoch}");
            return;
        }
        // A disabled node finalizes nothing (upstream FinalizedFeatureChangeListener clears the cache).
        var levels = content.Status == FeatureZNode.StatusEnabled ? content.Features : new Dictionary<string, short>();
        _current = new Snapshot(levels, zkVersion);
        _log?.Invoke($"finalized features now {FeatureZNode.Describe(levels)} (epoch {zkVersion})");
        Changed?.Invoke(current, _current);
    }

    /// <summary>Single-node mode: writes the new levels (file first, then memory) with epoch + 1.</summary>
    internal long CommitLocal(IReadOnlyDictionary<string, short> levels)
    {
        lock (_commitGate)
        {
            long epoch = _current.Epoch + 1;
            if (_file is not null)
            {
                var tmp = _file + ".tmp";
                using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
                {
                    f.Write(FeatureZNode.Encode(levels, epoch));
                    f.Flush(flushToDisk: true);
                }
                File.Move(tmp, _file, overwrite: true);
            }
            var previous = _current;
            _current = new Snapshot(new Dictionary<string, short>(levels.Where(l => l.Value > 0), StringComparer.Ordinal), epoch);
            Changed?.Invoke(previous, _current);
            return epoch;
        }
    }

    /// <summary>One update of an UpdateFeatures request: the feature, the level asked for and the
    /// upgrade type (1 upgrade, 2 safe downgrade, 3 unsafe downgrade; v0's AllowDowngrade maps to 2).</summary>
    public readonly record struct Update(string Feature, short Level, sbyte UpgradeType);

    /// <summary>
    /// The levels after applying every update, or the first update's error (the whole request
    /// fails: Kafka 4.x's FeatureControlManager.updateFeatures, which returns the first feature's
    /// error and applies nothing). Checks, in upstream's order: the upgrade type is known; the level
    /// is not negative; this build supports the feature at that level (0 = off is always
    /// supported; every broker of a Samsa cluster runs the same table); a lower level needs a
    /// downgrade type and a higher one the upgrade type. All errors are INVALID_UPDATE_VERSION.
    /// </summary>
    public static (ErrorCode Error, string? Message, Dictionary<string, short> Target) Plan(
        IReadOnlyDictionary<string, short> current, IEnumerable<Update> updates)
    {
        var target = new Dictionary<string, short>(current, StringComparer.Ordinal);
        foreach (var u in updates)
        {
            string? reason = null;
            short existing = current.GetValueOrDefault(u.Feature);
            var supported = BrokerFeatures.All.FirstOrDefault(f => f.Name == u.Feature);
            if (u.UpgradeType is < 1 or > 3) reason = "The controller does not support the given upgrade type.";
            else if (u.Level < 0) reason = "A feature version cannot be less than 0.";
            else if (supported is null) reason = "The controller does not support the given feature.";
            else if (u.Level != 0 && (u.Level < supported.MinSupported || u.Level > supported.MaxSupported))
                reason = $"The controller only supports versions {supported.MinSupported}-{supported.MaxSupported}.";
            else if (u.Level < existing && u.UpgradeType == 1)
                reason = "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.";
            else if (u.Level > existing && u.UpgradeType != 1)
                reason = "Can't downgrade to a newer version.";
            if (reason is not null)
                return (ErrorCode.InvalidUpdateVersion, $"Invalid update version {u.Level} for feature {u.Feature}. {reason}", target);
            if (u.Level == 0) target.Remove(u.Feature);
            else target[u.Feature] = u.Level;
        }
        return (ErrorCode.None, null, target);
    }

    public static bool Same(IReadOnlyDictionary<string, short> a, IReadOnlyDictionary<string, short> b) =>
        a.Count(x => x.Value > 0) == b.Count(x => x.Value > 0) && a.Where(x => x.Value > 0).All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
