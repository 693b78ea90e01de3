using System.Buffers.Binary;

namespace Samsa.Fuzz;

/// <summary>
/// A small, deterministic mutator for the smoke run (no instrumentation, no feedback): from a seed
/// input it applies one to four of the edits AFL's havoc stage makes — bit flips, random bytes,
/// "interesting" 8/16/32-bit values (0, -1, boundaries, int.MaxValue) at random offsets in both
/// byte orders, arithmetic on length-looking fields, deletions, duplications, insertions, truncation
/// and splices with another seed. The same seed of the Random gives the same inputs on every machine.
/// </summary>
public sealed class Mutator(int seed)
{
    private readonly Random _random = new(seed);

    private static readonly int[] Interesting32 = [0, 1, -1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
        0x7fffffff, unchecked((int)0x80000000), 0x7ffffff0, 1 << 20, 1 << 24, 61, 12, 49];

    public byte[] Mutate(byte[] input, IReadOnlyList<byte[]> corpus)
    {
        var data = new List<byte>(input);
        int edits = 1 + _random.Next(4);
        for (int e = 0; e < edits; e++)
        {
            int op = _random.Next(10);
            if (data.Count == 0) op = 7;
            int at = data.Count == 0 ? 0 : _random.Next(data.Count);
            switch (op)
            {
                case 0:
                    data[at] ^= (byte)(1 << _random.Next(8));
                    break;
                case 1:
                    data[at] = (byte)_random.Next(256);
                    break;
                case 2:
                case 3:
                {
                    int value = Interesting32[_random.Next(Interesting32.Length)];
                    int width = op == 2 ? 4 : 1 << _random.Next(2);
                    Span<byte> bytes = stackalloc byte[4];
                    BinaryPrimitives.WriteInt32BigEndian(bytes, value);
                    var slice = bytes[(4 - width)..];
                    if (_random.Next(4) == 0) slice.Reverse();
                    for (int i = 0; i < slice.Length && at + i < data.Count; i++) data[at + i] = slice[i];
                    break;
                }
                case 4:
                {
                    // arithmetic on a big-endian int16/int32 (lengths, counts)
                    if (at + 4 > data.Count) break;
                    var span = data.GetRange(at, 4).ToArray();
                    int v = BinaryPrimitives.ReadInt32BigEndian(span) + _random.Next(-35, 36);
                    BinaryPrimitives.WriteInt32BigEndian(span, v);
                    for (int i = 0; i < 4; i++) data[at + i] = span[i];
                    break;
                }
                case 5:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + _random.Next(16)));
                    break;
                case 6:
                {
                    int len = Math.Min(data.Count - at, 1 + _random.Next(32));
                    data.InsertRange(_random.Next(data.Count + 1), data.GetRange(at, len));
                    break;
                }
                case 7:
                {
                    var bytes = new byte[1 + _random.Next(16)];
                    _random.NextBytes(bytes);
                    data.InsertRange(data.Count == 0 ? 0 : _random.Next(data.Count + 1), bytes);
                    break;
                }
                case 8:
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 9:
                {
                    var other = corpus[_random.Next(corpus.Count)];
                    if (other.Length == 0) break;
                    int from = _random.Next(other.Length);
                    data.RemoveRange(at, data.Count - at);
                    data.AddRange(other.AsSpan(from).ToArray());
                    break;
                }
            }
        }
        return data.ToArray();
    }
}
