using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Samsa.Kafka.Storage;

/// <summary>An aborted transaction (KIP-98): producer id, its first and last (marker) offsets, and the log's last stable offset when it ended.</summary>
public readonly record struct AbortedTxn(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset);

/// <summary>
/// "NNN.txnindex": the aborted transactions whose abort marker lies in this segment, 34-byte
/// entries (version int16 = 0, producerId int64, firstOffset int64, lastOffset int64,
/// lastStableOffset int64) as upstream AbortedTxn writes them. A read_committed Fetch reports the
/// aborted transactions overlapping the data it returns, so the consumer can skip their records.
/// The file exists only once the segment has an aborted transaction, as upstream.
/// </summary>
public sealed class TransactionIndex : IDisposable
{
    public const int EntrySize = 34;
    private readonly List<AbortedTxn> _entries = new();
    private SafeFileHandle? _handle;

    public TransactionIndex(string path)
    {
        Path = path;
        if (File.Exists(path))
        {
            byte[] bytes = File.ReadAllBytes(path);
            for (int at = 0; at + EntrySize <= bytes.Length; at += EntrySize)
            {
                ReadOnlySpan<byte> e = bytes.AsSpan(at, EntrySize);
                if (BinaryPrimitives.ReadInt16BigEndian(e) != 0)
                {
                    break; // unknown version or zero-filled tail: stop, recovery rebuilds when needed
                }
                _entries.Add(new AbortedTxn(BinaryPrimitives.ReadInt64BigEndian(e[2..]), BinaryPrimitives.ReadInt64BigEndian(e[10..]),
                    BinaryPrimitives.ReadInt64BigEndian(e[18..]), BinaryPrimitives.ReadInt64BigEndian(e[26..])));
            }
        }
    }

    public string Path { get; private set; }
    public IReadOnlyList<AbortedTxn> Entries => _entries;

    public void Append(AbortedTxn txn)
    {
        if (_entries.Count > 0 && txn.LastOffset < _entries[^1].LastOffset)
        {
            throw new InvalidOperationException($"aborted transaction ending at {txn.LastOffset} appended after one ending at {_entries[^1].LastOffset}");
        }
        _handle ??= File.OpenHandle(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        Span<byte> e = stackalloc byte[EntrySize];
        BinaryPrimitives.WriteInt16BigEndian(e, 0);
        BinaryPrimitives.WriteInt64BigEndian(e[2..], txn.ProducerId);
        BinaryPrimitives.WriteInt64BigEndian(e[10..], txn.FirstOffset);
        BinaryPrimitives.WriteInt64BigEndian(e[18..], txn.LastOffset);
        BinaryPrimitives.WriteInt64BigEndian(e[26..], txn.LastStableOffset);
        RandomAccess.Write(_handle, e, (long)_entries.Count * EntrySize);
        _entries.Add(txn);
    }

    /// <summary>Drops entries whose marker is at or after <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        int keep = _entries.FindIndex(e => e.LastOffset >= offset);
        if (keep < 0)
        {
            return;
        }
        _entries.RemoveRange(keep, _entries.Count - keep);
        Rewrite();
    }

    public void Reset()
    {
        if (_entries.Count == 0 && !File.Exists(Path))
        {
            return;
        }
        _entries.Clear();
        Rewrite();
    }

    private void Rewrite()
    {
        _handle ??= File.Exists(Path) ? File.OpenHandle(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete) : null;
        if (_handle is not null)
        {
            RandomAccess.SetLength(_handle, (long)_entries.Count * EntrySize);
        }
    }

    public void Flush()
    {
        if (_handle is not null)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    public void RenameTo(string newPath)
    {
        if (File.Exists(Path))
        {
            File.Move(Path, newPath, overwrite: true);
        }
        Path = newPath;
    }

    public void Dispose()
    {
        _handle?.Dispose();
        _handle = null;
    }
}
