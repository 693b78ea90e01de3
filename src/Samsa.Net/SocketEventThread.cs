namespace Samsa.Net;

/// <summary>
/// The runtime's socket event threads. With DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1
/// (`samsa broker` sets it, issue #19) a socket operation's continuation runs on the event thread
/// that saw the socket ready instead of being queued to the thread pool: no hand-off, no worker
/// wake-up. Such a thread serves every socket registered with it, so code that may block — wait
/// synchronously for ZooKeeper, for another broker, for a lock held across I/O — must leave it
/// first; <see cref="IsCurrent"/> tells when, and <c>await Task.Yield()</c> moves to the pool.
/// </summary>
public static class SocketEventThread
{
    // The runtime names its event threads so ("/proc/PID/task/*/comm" shows it); a thread of the
    // pool, or one of the broker's own (the replica fetcher's), never has this name.
    private const string RuntimeThreadName = ".NET Sockets";

    /// <summary>True on one of the runtime's socket event threads.</summary>
    public static bool IsCurrent
    {
        get
        {
            var thread = Thread.CurrentThread;
            return !thread.IsThreadPoolThread && thread.Name == RuntimeThreadName;
        }
    }

    /// <summary>The environment variable the runtime reads once, when the first socket is created.</summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Asks the runtime to run socket continuations inline, unless the environment already says
    /// either way. Effective only before the process creates its first socket.
    /// </summary>
    public static void PreferInlineCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
    }
}
