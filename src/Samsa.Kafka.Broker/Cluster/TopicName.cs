namespace Samsa.Kafka.Broker.Cluster;

/// <summary>Topic name rules of upstream's org.apache.kafka.common.internals.Topic.</summary>
public static class TopicName
{
    public const int MaxLength = 249;
    public const string GroupMetadataTopic = "__consumer_offsets";
    public const string TransactionStateTopic = "__transaction_state";
    public const string ShareGroupStateTopic = "__share_group_state";

    /// <summary>Null when legal, else upstream's InvalidTopicException message.</summary>
    public static string? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "Topic name is illegal, it can't be empty";
        if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
        if (name.Length > MaxLength)
            return $"Topic name is illegal, it can't be longer than {MaxLength} characters, topic name: {name}";
        foreach (char c in name)
        {
            bool ok = c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-';
            if (!ok) return $"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
        }
        return null;
    }

    public static bool IsInternal(string name) => name == GroupMetadataTopic || name == TransactionStateTopic || name == ShareGroupStateTopic;

    /// <summary>'.' and '_' collide in metric names, so upstream refuses topics differing only by them.</summary>
    public static string Unify(string name) => name.Replace('.', '_');
}

/// <summary>Kafka's Uuid text form: URL-safe base64 of the 16 big-endian bytes, no padding.</summary>
public static class KafkaUuid
{
    public static Guid NewTopicId()
    {
        while (true)
        {
            var g = Guid.NewGuid();
            // Upstream's Uuid.randomUuid skips ids whose text starts with '-' (unusable on command lines)
            // and the reserved ZERO / METADATA (…01) ids.
            var s = ToBase64(g);
            if (!s.StartsWith('-') && g != Guid.Empty) return g;
        }
    }

    public static string ToBase64(Guid g)
    {
        Span<byte> bytes = stackalloc byte[16];
        g.TryWriteBytes(bytes, bigEndian: true, out _);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static bool TryParse(string text, out Guid id)
    {
        id = Guid.Empty;
        var b64 = text.Replace('-', '+').Replace('_', '/');
        while (b64.Length % 4 != 0) b64 += "=";
        Span<byte> bytes = stackalloc byte[18];
        if (!Convert.TryFromBase64String(b64, bytes, out int n) || n != 16) return false;
        id = new Guid(bytes[..16], bigEndian: true);
        return true;
    }
}
