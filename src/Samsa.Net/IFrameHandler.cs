namespace Samsa.Net;

/// <summary>The protocol side of a connection: sees frames, never the socket.</summary>
public interface IFrameHandler
{
    /// <summary>Called once when the connection is accepted, before any byte is read.</summary>
    ValueTask OnConnectedAsync(Connection connection);

    /// <summary>
    /// Called once with the first 4 bytes of a new connection (big-endian), before any frame is read.
    /// Return true when the handler took them as a raw command (ZooKeeper four-letter words such
    /// as "ruok"); then no frames are read and the handler answers with
    /// <see cref="Connection.SendRawAsync"/> and closes. Return false to treat the 4 bytes as the first
    /// frame's length.
    /// </summary>
    ValueTask<bool> OnFirstWordAsync(Connection connection, int firstWord);

    /// <summary>
    /// Bytes that follow the first word as the raw command's argument (ZooKeeper's "stmk" carries an
    /// 8-byte trace mask). When this is above 0 the connection waits for them, or for the end of
    /// input, and calls <see cref="OnRawCommandAsync"/> instead of <see cref="OnFirstWordAsync"/>.
    /// </summary>
    int RawCommandArgumentLength(int firstWord) => 0;

    /// <summary>Answers a raw command that takes an argument; <paramref name="argument"/> is shorter
    /// than asked when the peer ended its input first.</summary>
    ValueTask OnRawCommandAsync(Connection connection, int firstWord, ReadOnlyMemory<byte> argument) => ValueTask.CompletedTask;

    /// <summary>
    /// Called for each complete frame, in order. The next frame is not read until the returned task
    /// completes; <paramref name="frame"/> is valid only until then (copy what you keep).
    /// </summary>
    ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame);

    /// <summary>Called once after the connection closed, from either side.</summary>
    ValueTask OnClosedAsync(Connection connection);
}
