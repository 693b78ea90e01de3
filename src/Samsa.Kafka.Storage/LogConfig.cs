using System.Globalization;

namespace Samsa.Kafka.Storage;

/// <summary>
/// Per-log settings under upstream's topic-level names and defaults (LogConfig / TopicConfig).
/// The broker maps its log.* server.properties keys onto these.
/// </summary>
public sealed record LogConfig
{
    /// <summary>segment.bytes (broker log.segment.bytes), default 1 GiB.</summary>
    public int SegmentBytes { get; init; } = 1024 * 1024 * 1024;
    /// <summary>segment.ms (broker log.roll.ms / log.roll.hours), default 7 days.</summary>
    public long SegmentMs { get; init; } = 7L * 24 * 60 * 60 * 1000;
    /// <summary>segment.jitter.ms, default 0.</summary>
    public long SegmentJitterMs { get; init; }
    /// <summary>segment.index.bytes (broker log.index.size.max.bytes), default 10 MiB.</summary>
    public int SegmentIndexBytes { get; init; } = 10 * 1024 * 1024;
    /// <summary>index.interval.bytes (broker log.index.interval.bytes), default 4096.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;
    /// <summary>retention.ms (broker log.retention.ms/minutes/hours), default 7 days; -1 keeps forever.</summary>
    public long RetentionMs { get; init; } = 7L * 24 * 60 * 60 * 1000;
    /// <summary>retention.bytes (broker log.retention.bytes), default -1 (no size limit).</summary>
    public long RetentionBytes { get; init; } = -1;
    /// <summary>cleanup.policy: "delete", "compact" or "compact,delete".</summary>
    public string CleanupPolicy { get; init; } = "delete";
    /// <summary>delete.retention.ms (broker log.cleaner.delete.retention.ms), default 1 day: how long tombstones stay readable.</summary>
    public long DeleteRetentionMs { get; init; } = 24L * 60 * 60 * 1000;
    /// <summary>min.compaction.lag.ms, default 0.</summary>
    public long MinCompactionLagMs { get; init; }
    /// <summary>min.cleanable.dirty.ratio, default 0.5.</summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;
    /// <summary>flush.messages (broker log.flush.interval.messages), default Long.MAX_VALUE (leave it to the OS).</summary>
    public long FlushMessages { get; init; } = long.MaxValue;
    /// <summary>flush.ms (broker log.flush.interval.ms), default Long.MAX_VALUE.</summary>
    public long FlushMs { get; init; } = long.MaxValue;
    /// <summary>file.delete.delay.ms (broker log.segment.delete.delay.ms), default 60 s.</summary>
    public long FileDeleteDelayMs { get; init; } = 60_000;
    /// <summary>message.timestamp.type: "CreateTime" or "LogAppendTime".</summary>
    public string MessageTimestampType { get; init; } = "CreateTime";
    /// <summary>max.message.bytes (broker message.max.bytes), default 1048588.</summary>
    public int MaxMessageBytes { get; init; } = 1024 * 1024 + 12;

    public bool Compact => CleanupPolicy.Split(',').Any(p => p.Trim().Equals("compact", StringComparison.OrdinalIgnoreCase));
    public bool Delete => CleanupPolicy.Split(',').Any(p => p.Trim().Equals("delete", StringComparison.OrdinalIgnoreCase));
    public bool LogAppendTime => MessageTimestampType.Equals("LogAppendTime", StringComparison.OrdinalIgnoreCase);

    /// <summary>Topic-level config keys this record understands (for DescribeConfigs / validation).</summary>
    public static readonly IReadOnlyList<string> TopicKeys =
    [
        "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes", "index.interval.bytes",
        "retention.ms", "retention.bytes", "cleanup.policy", "delete.retention.ms", "min.compaction.lag.ms",
        "min.cleanable.dirty.ratio", "flush.messages", "flush.ms", "file.delete.delay.ms",
        "message.timestamp.type", "max.message.bytes",
    ];

    /// <summary>Applies topic-level overrides (unknown keys are ignored; bad values throw FormatException).</summary>
    public LogConfig With(IReadOnlyDictionary<string, string> topicConfig)
    {
        LogConfig c = this;
        foreach ((string key, string value) in topicConfig)
        {
            c = key switch
            {
                "segment.bytes" => c with { SegmentBytes = Int(value) },
                "segment.ms" => c with { SegmentMs = Long(value) },
                "segment.jitter.ms" => c with { SegmentJitterMs = Long(value) },
                "segment.index.bytes" => c with { SegmentIndexBytes = Int(value) },
                "index.interval.bytes" => c with { IndexIntervalBytes = Int(value) },
                "retention.ms" => c with { RetentionMs = Long(value) },
                "retention.bytes" => c with { RetentionBytes = Long(value) },
                "cleanup.policy" => c with { CleanupPolicy = value },
                "delete.retention.ms" => c with { DeleteRetentionMs = Long(value) },
                "min.compaction.lag.ms" => c with { MinCompactionLagMs = Long(value) },
                "min.cleanable.dirty.ratio" => c with { MinCleanableDirtyRatio = double.Parse(value, CultureInfo.InvariantCulture) },
                "flush.messages" => c with { FlushMessages = Long(value) },
                "flush.ms" => c with { FlushMs = Long(value) },
                "file.delete.delay.ms" => c with { FileDeleteDelayMs = Long(value) },
                "message.timestamp.type" => c with { MessageTimestampType = value },
                "max.message.bytes" => c with { MaxMessageBytes = Int(value) },
                _ => c,
            };
        }
        return c;
    }

    /// <summary>
    /// Defaults from broker server.properties keys (log.segment.bytes, log.roll.ms/hours,
    /// log.retention.ms/minutes/hours, log.retention.bytes, log.cleanup.policy, ...), with upstream's
    /// precedence (ms over minutes over hours).
    /// </summary>
    public static LogConfig FromBrokerProperties(IReadOnlyDictionary<string, string> props)
    {
        var c = new LogConfig();
        string? Get(string key) => props.TryGetValue(key, out string? v) ? v.Trim() : null;
        if (Get("log.segment.bytes") is { } sb) c = c with { SegmentBytes = Int(sb) };
        if (Get("log.roll.ms") is { } rms) c = c with { SegmentMs = Long(rms) };
        else if (Get("log.roll.hours") is { } rh) c = c with { SegmentMs = Long(rh) * 3_600_000 };
        if (Get("log.roll.jitter.ms") is { } jms) c = c with { SegmentJitterMs = Long(jms) };
        else if (Get("log.roll.jitter.hours") is { } jh) c = c with { SegmentJitterMs = Long(jh) * 3_600_000 };
        if (Get("log.index.size.max.bytes") is { } ib) c = c with { SegmentIndexBytes = Int(ib) };
        if (Get("log.index.interval.bytes") is { } ii) c = c with { IndexIntervalBytes = Int(ii) };
        if (Get("log.retention.ms") is { } ret) c = c with { RetentionMs = Long(ret) };
        else if (Get("log.retention.minutes") is { } rmin) c = c with { RetentionMs = Long(rmin) * 60_000 };
        else if (Get("log.retention.hours") is { } rhr) c = c with { RetentionMs = Long(rhr) * 3_600_000 };
        if (Get("log.retention.bytes") is { } rb) c = c with { RetentionBytes = Long(rb) };
        if (Get("log.cleanup.policy") is { } cp) c = c with { CleanupPolicy = cp };
        if (Get("log.cleaner.delete.retention.ms") is { } dr) c = c with { DeleteRetentionMs = Long(dr) };
        if (Get("log.cleaner.min.compaction.lag.ms") is { } lag) c = c with { MinCompactionLagMs = Long(lag) };
        if (Get("log.cleaner.min.cleanable.ratio") is { } ratio) c = c with { MinCleanableDirtyRatio = double.Parse(ratio, CultureInfo.InvariantCulture) };
        if (Get("log.flush.interval.messages") is { } fm) c = c with { FlushMessages = Long(fm) };
        if (Get("log.flush.interval.ms") is { } fms) c = c with { FlushMs = Long(fms) };
        if (Get("log.segment.delete.delay.ms") is { } dd) c = c with { FileDeleteDelayMs = Long(dd) };
        if (Get("log.message.timestamp.type") is { } tt) c = c with { MessageTimestampType = tt };
        if (Get("message.max.bytes") is { } mm) c = c with { MaxMessageBytes = Int(mm) };
        return c;
    }

    private static int Int(string s) => int.Parse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);
    private static long Long(string s) => long.Parse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);
}
