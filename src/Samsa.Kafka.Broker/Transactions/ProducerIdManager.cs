using System.Globalization;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>Thrown when no producer id block can be had right now (ZooKeeper unreachable); the
/// request answers COORDINATOR_LOAD_IN_PROGRESS and the client retries, as upstream's
/// RPCProducerIdManager answers while its next block has not arrived.</summary>
public sealed class ProducerIdsUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Hands out producer ids (KIP-98) in blocks of <see cref="BlockSize"/>.
/// <list type="bullet">
/// <item>ZooKeeper mode (<see cref="BlockSource"/> set): every block is claimed cluster-wide in
/// <c>/latest_producer_id_block</c> with a conditional write, as upstream's ZkProducerIdManager, so
/// two brokers never hand out the same id, across restarts too. The next block is claimed in the
/// background once 90 % of the current one is used, so InitProducerId rarely waits for ZooKeeper.</item>
/// <item>Single broker: the end of the reserved block is written to a file (atomically, before any
/// id of the block is used), so a restart starts after the last reserved block.</item>
/// <item>No file and no source (in-memory brokers): ids start at 0 on each start.</item>
/// </list>
/// </summary>
public sealed class ProducerIdManager
{
    public const int BlockSize = 1000;
    private static readonly TimeSpan BlockWait = TimeSpan.FromSeconds(10);
    private readonly object _gate = new();
    private readonly string? _path;
    private long _next;
    private long _blockEnd;   // exclusive
    private Func<long, Task<(long Start, long End)>>? _source;
    private long _floor;   // ids below it were handed out by this broker before it joined a cluster
    private Task<(long Start, long End)>? _prefetch;

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

    /// <summary>ZooKeeper mode: claims the next cluster-wide block (start and end inclusive) starting
    /// at or above the given id. Setting it drops whatever local block was reserved, so every id comes
    /// from a cluster-wide block; ids this broker reserved on its own before (a single-node data
    /// directory moved into a cluster) are never claimed again.</summary>
    public Func<long, Task<(long Start, long End)>>? BlockSource
    {
        set
        {
            lock (_gate)
            {
                _source = value;
                _floor = _blockEnd;
                _next = _blockEnd = 0;
                _prefetch = null;
            }
        }
    }

    /// <summary>The next free producer id.</summary>
    public long Generate()
    {
        lock (_gate)
        {
            if (_next >= _blockEnd)
            {
                if (_source is not null) TakeClusterBlock();
                else ReserveLocalBlock();
            }
            else if (_source is not null && _prefetch is null && _blockEnd - _next <= BlockSize / 10)
            {
                _prefetch = Claim(_source);
            }
            return _next++;
        }
    }

    private void TakeClusterBlock()
    {
        var pending = _prefetch ?? Claim(_source!);
        _prefetch = null;
        (long start, long end) block;
        try
        {
            if (!pending.Wait(BlockWait)) throw new TimeoutException("timed out claiming a producer id block in ZooKeeper");
            block = pending.Result;
        }
        catch (Exception e)
        {
            throw new ProducerIdsUnavailableException($"no producer id block available: {(e is AggregateException a ? a.InnerException ?? a : e).Message}", e);
        }
        _next = block.start;
        _blockEnd = block.end + 1;
    }

    private Task<(long, long)> Claim(Func<long, Task<(long Start, long End)>> source)
    {
        long floor = _floor;
        return Task.Run(async () => { var (s, e) = await source(floor); return (s, e); });
    }

    private void ReserveLocalBlock()
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
}
