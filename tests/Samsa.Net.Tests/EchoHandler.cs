using System.Collections.Concurrent;
using System.Text;

namespace Samsa.Net.Tests;

/// <summary>Echoes every frame back; answers the ZooKeeper four-letter word "ruok" with "imok".</summary>
internal class EchoHandler : IFrameHandler
{
    public int Connected;
    public int ClosedCount;
    public readonly TaskCompletionSource AllClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int ExpectedCloses = int.MaxValue;
    public readonly ConcurrentQueue<int> FirstWords = new();

    public virtual ValueTask OnConnectedAsync(Connection connection)
    {
        Interlocked.Increment(ref Connected);
        return ValueTask.CompletedTask;
    }

    public virtual async ValueTask<bool> OnFirstWordAsync(Connection connection, int firstWord)
    {
        FirstWords.Enqueue(firstWord);
        if (firstWord == System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian("ruok"u8))
        {
            await connection.SendRawAsync(Encoding.ASCII.GetBytes("imok"));
            connection.Close();
            return true;
        }
        return false;
    }

    public virtual ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
        => connection.SendFrameAsync(frame.ToArray());

    public virtual ValueTask OnClosedAsync(Connection connection)
    {
        if (Interlocked.Increment(ref ClosedCount) >= ExpectedCloses)
        {
            AllClosed.TrySetResult();
        }
        return ValueTask.CompletedTask;
    }
}
