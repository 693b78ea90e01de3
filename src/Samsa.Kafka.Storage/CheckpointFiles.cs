using System.Globalization;
using System.Text;

namespace Samsa.Kafka.Storage;

/// <summary>Topic name and partition number.</summary>
public readonly record struct TopicPartition(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}-{Partition}";

    /// <summary>Parses a log directory name "&lt;topic&gt;-&lt;partition&gt;" (the topic may itself contain '-').</summary>
    public static bool TryParseDirectoryName(string name, out TopicPartition tp)
    {
        tp = default;
        int dash = name.LastIndexOf('-');
        if (dash <= 0 || dash == name.Length - 1)
        {
            return false;
        }
        if (!int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int partition))
        {
            return false;
        }
        tp = new TopicPartition(name[..dash], partition);
        return true;
    }
}

/// <summary>
/// Upstream's checkpoint text format (server-common CheckpointFile): a version line, a count line,
/// then one entry per line; written to "&lt;file&gt;.tmp", fsynced and renamed over the old file so a
/// crash leaves either the old or the new checkpoint.
/// </summary>
public static class CheckpointFile
{
    public const int Version = 0;

    public static void Write(string path, IReadOnlyCollection<string> lines)
    {
        var text = new StringBuilder();
        text.Append(Version.ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append(lines.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (string line in lines)
        {
            text.Append(line).Append('\n');
        }
        WriteAtomically(path, Encoding.UTF8.GetBytes(text.ToString()));
    }

    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads entry lines; returns an empty list when the file does not exist. Throws InvalidDataException on a malformed file.</summary>
    public static List<string[]> Read(string path, int fieldsPerLine)
    {
        var result = new List<string[]>();
        if (!File.Exists(path))
        {
            return result;
        }
        string[] lines = File.ReadAllLines(path);
        if (lines.Length < 2 || !int.TryParse(lines[0].Trim(), out int version) || !int.TryParse(lines[1].Trim(), out int count) || count < 0)
        {
            throw new InvalidDataException($"malformed checkpoint file {path}");
        }
        if (version != Version)
        {
            throw new InvalidDataException($"unrecognised checkpoint version {version} in {path}");
        }
        if (lines.Length - 2 < count)
        {
            throw new InvalidDataException($"checkpoint file {path} announces {count} entries but has {lines.Length - 2}");
        }
        for (int i = 0; i < count; i++)
        {
            string[] fields = lines[2 + i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != fieldsPerLine)
            {
                throw new InvalidDataException($"malformed line in checkpoint file {path}: {lines[2 + i]}");
            }
            result.Add(fields);
        }
        return result;
    }
}

/// <summary>
/// Broker-level offset checkpoints (recovery-point-offset-checkpoint, replication-offset-checkpoint,
/// log-start-offset-checkpoint, cleaner-offset-checkpoint): lines "&lt;topic&gt; &lt;partition&gt; &lt;offset&gt;".
/// </summary>
public static class OffsetCheckpointFile
{
    public const string RecoveryPoint = "recovery-point-offset-checkpoint";
    public const string Replication = "replication-offset-checkpoint";
    public const string LogStartOffset = "log-start-offset-checkpoint";
    public const string Cleaner = "cleaner-offset-checkpoint";

    public static void Write(string path, IEnumerable<KeyValuePair<TopicPartition, long>> offsets)
    {
        var lines = offsets
            .OrderBy(e => e.Key.Topic, StringComparer.Ordinal).ThenBy(e => e.Key.Partition)
            .Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key.Topic} {e.Key.Partition} {e.Value}"))
            .ToList();
        CheckpointFile.Write(path, lines);
    }

    public static Dictionary<TopicPartition, long> Read(string path)
    {
        var result = new Dictionary<TopicPartition, long>();
        foreach (string[] f in CheckpointFile.Read(path, 3))
        {
            if (!int.TryParse(f[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int partition) ||
                !long.TryParse(f[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long offset))
            {
                throw new InvalidDataException($"malformed line in checkpoint file {path}: {string.Join(' ', f)}");
            }
            result[new TopicPartition(f[0], partition)] = offset;
        }
        return result;
    }
}

/// <summary>
/// "partition.metadata" in a partition directory (KIP-516): "version: 0" and "topic_id: &lt;id&gt;", the id in
/// Kafka's Uuid text form (URL-safe base64 of the 16 bytes, no padding).
/// </summary>
public static class PartitionMetadataFile
{
    public const string FileName = "partition.metadata";

    public static void Write(string directory, Guid topicId)
    {
        string text = $"version: 0\ntopic_id: {KafkaUuid.ToString(topicId)}";
        CheckpointFile.WriteAtomically(Path.Combine(directory, FileName), Encoding.UTF8.GetBytes(text));
    }

    public static Guid? Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }
        string[] lines = File.ReadAllLines(path);
        if (lines.Length < 2 || !lines[0].StartsWith("version:", StringComparison.Ordinal) || !lines[1].StartsWith("topic_id:", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"malformed partition metadata file {path}");
        }
        return KafkaUuid.Parse(lines[1]["topic_id:".Length..].Trim());
    }
}

/// <summary>Kafka's Uuid text form: URL-safe base64 of the big-endian 16 bytes without padding (22 characters).</summary>
public static class KafkaUuid
{
    public static string ToString(Guid id)
    {
        byte[] bytes = id.ToByteArray(bigEndian: true);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static Guid Parse(string text)
    {
        string b64 = text.Replace('-', '+').Replace('_', '/');
        b64 = b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=');
        byte[] bytes = Convert.FromBase64String(b64);
        if (bytes.Length != 16)
        {
            throw new FormatException($"not a Kafka Uuid: {text}");
        }
        return new Guid(bytes, bigEndian: true);
    }
}

/// <summary>
/// meta.properties of a log directory (ZooKeeper-mode v0: version=0, broker.id, cluster.id), in Java
/// Properties text form. A broker refuses a directory whose broker.id differs from its own.
/// </summary>
public static class MetaProperties
{
    public const string FileName = "meta.properties";

    public static void Write(string logDir, int brokerId, string? clusterId)
    {
        var text = new StringBuilder();
        text.Append("#\n#").Append(DateTime.UtcNow.ToString("ddd MMM dd HH:mm:ss 'UTC' yyyy", CultureInfo.InvariantCulture)).Append('\n');
        if (clusterId is not null)
        {
            text.Append("cluster.id=").Append(clusterId).Append('\n');
        }
        text.Append("version=0\n");
        text.Append("broker.id=").Append(brokerId.ToString(CultureInfo.InvariantCulture)).Append('\n');
        CheckpointFile.WriteAtomically(Path.Combine(logDir, FileName), Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Key/value pairs of the file, or null when absent.</summary>
    public static Dictionary<string, string>? Read(string logDir)
    {
        string path = Path.Combine(logDir, FileName);
        if (!File.Exists(path))
        {
            return null;
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in File.ReadAllLines(path))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or '!')
            {
                continue;
            }
            int eq = line.IndexOfAny(['=', ':']);
            if (eq > 0)
            {
                result[line[..eq].Trim()] = line[(eq + 1)..].Trim();
            }
        }
        return result;
    }
}
