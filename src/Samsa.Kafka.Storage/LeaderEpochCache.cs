using System.Globalization;

namespace Samsa.Kafka.Storage;

/// <summary>
/// The leader epoch cache (KIP-101/KIP-279): for each leader epoch the first offset written in it,
/// kept in "leader-epoch-checkpoint" (lines "&lt;epoch&gt; &lt;startOffset&gt;") and used to answer
/// OffsetsForLeaderEpoch and to truncate followers correctly.
/// </summary>
public sealed class LeaderEpochCache
{
    public const string FileName = "leader-epoch-checkpoint";
    public const int UndefinedEpoch = -1;
    public const long UndefinedOffset = -1;

    private readonly string _path;
    private readonly List<(int Epoch, long StartOffset)> _entries = new();
    private readonly object _lock = new();

    public LeaderEpochCache(string directory)
    {
        _path = Path.Combine(directory, FileName);
        foreach (string[] f in CheckpointFile.Read(_path, 2))
        {
            _entries.Add((int.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture)));
        }
    }

    public IReadOnlyList<(int Epoch, long StartOffset)> Entries
    {
        get { lock (_lock) { return _entries.ToArray(); } }
    }

    public int LatestEpoch
    {
        get { lock (_lock) { return _entries.Count == 0 ? UndefinedEpoch : _entries[^1].Epoch; } }
    }

    /// <summary>
    /// Records that <paramref name="epoch"/> starts at <paramref name="startOffset"/> when it is newer than
    /// the latest known epoch; entries the new one contradicts (same or higher epoch, or starting at or
    /// after it) are dropped first, as upstream assign does.
    /// </summary>
    public void Assign(int epoch, long startOffset)
    {
        if (epoch < 0)
        {
            return;
        }
        lock (_lock)
        {
            if (_entries.Count > 0 && _entries[^1].Epoch == epoch && _entries[^1].StartOffset <= startOffset)
            {
                return;
            }
            if (_entries.Count > 0 && epoch < _entries[^1].Epoch && _entries[^1].StartOffset <= startOffset)
            {
                return; // an older epoch appearing later in the log (reassigned data); keep the newest view
            }
            _entries.RemoveAll(e => e.Epoch >= epoch || e.StartOffset >= startOffset);
            _entries.Add((epoch, startOffset));
            Flush();
        }
    }

    /// <summary>
    /// OffsetsForLeaderEpoch: the largest epoch &lt;= requested and the end offset of it (the start of
    /// the next higher epoch, or the log end offset when requested is the latest epoch).
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int requestedEpoch, long logEndOffset)
    {
        lock (_lock)
        {
            if (requestedEpoch == UndefinedEpoch || _entries.Count == 0)
            {
                return (UndefinedEpoch, UndefinedOffset);
            }
            if (requestedEpoch == _entries[^1].Epoch)
            {
                return (requestedEpoch, logEndOffset);
            }
            int higher = _entries.FindIndex(e => e.Epoch > requestedEpoch);
            if (higher < 0)
            {
                return (UndefinedEpoch, UndefinedOffset);
            }
            return higher == 0 ? (requestedEpoch, _entries[0].StartOffset) : (_entries[higher - 1].Epoch, _entries[higher].StartOffset);
        }
    }

    /// <summary>The epoch of the entry covering <paramref name="offset"/>, or -1.</summary>
    public int EpochForOffset(long offset)
    {
        lock (_lock)
        {
            int epoch = UndefinedEpoch;
            foreach ((int e, long start) in _entries)
            {
                if (start > offset)
                {
                    break;
                }
                epoch = e;
            }
            return epoch;
        }
    }

    /// <summary>Drops entries starting at or after <paramref name="endOffset"/> (log truncated to it).</summary>
    public void TruncateFromEnd(long endOffset)
    {
        lock (_lock)
        {
            if (_entries.RemoveAll(e => e.StartOffset >= endOffset) > 0)
            {
                Flush();
            }
        }
    }

    /// <summary>Log start moved to <paramref name="startOffset"/>: entries before it collapse into one starting there.</summary>
    public void TruncateFromStart(long startOffset)
    {
        lock (_lock)
        {
            int last = _entries.FindLastIndex(e => e.StartOffset <= startOffset);
            if (last < 0 || (last == 0 && _entries[0].StartOffset == startOffset))
            {
                return;
            }
            int epoch = _entries[last].Epoch;
            _entries.RemoveRange(0, last + 1);
            _entries.Insert(0, (epoch, startOffset));
            Flush();
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _entries.Clear();
            Flush();
        }
    }

    private void Flush()
    {
        CheckpointFile.Write(_path, _entries.Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Epoch} {e.StartOffset}")).ToList());
    }
}
