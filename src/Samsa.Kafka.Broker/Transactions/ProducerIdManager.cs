using System.Globalization;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>
/// Hands out producer ids (KIP-98). Ids are reserved in blocks of <see cref="BlockSize"/>, as
/// upstream's ZooKeeper-mode ProducerIdManager reserves them in /latest_producer_id_block; the end of
/// the reserved block is written to a file (atomically, before any id of the block is used), so a
/// restart starts after the last reserved block and no id is ever handed out twice.
/// Without a file (in-memory brokers) ids start at 0 on each start.
/// </summary>
public sealed class ProducerIdManager
{
    public const int BlockSize = 1000;
    private readonly object _gate = new();
    private readonly string? _path;
    private long _next;
    private long _blockEnd;

    public ProducerIdManager(string? path)
    {
        _path = path;
        if (path is not null && File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long end) || end < 0)
                throw new InvalidDataException($"producer id block file {path} is not a non-negative number: '{text}'");
            _next = _blockEnd = end;
        }
    }

    /// <summary>The next free producer id.</summary>
    public long Generate()
    {
        lock (_gate)
        {
            if (_next >= _blockEnd)
            {
                if (_blockEnd > long.MaxValue - BlockSize)
                    throw new InvalidOperationException("producer ids exhausted");
                long end = _blockEnd + BlockSize;
                if (_path is not null)
                {
                    var tmp = _path + ".tmp";
                    using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
                    {
                        var bytes = System.Text.Encoding.ASCII.GetBytes(end.ToString(CultureInfo.InvariantCulture) + "\n");
                        f.Write(bytes);
                        f.Flush(flushToDisk: true);
                    }
                    File.Move(tmp, _path, overwrite: true);
                }
                _blockEnd = end;
            }
            return _next++;
        }
    }
}
