namespace Samsa.Host;

/// <summary><c>samsa keeper --config zoo.cfg</c>: the standalone Keeper (KeeperCommand).</summary>
internal static class Keeper
{
    public static Task<int> RunAsync(string[] args) => KeeperCommand.RunAsync(args);
}

/// <summary>The Keeper half of <c>samsa dev</c>: an in-process Keeper with its data under the dev
/// data directory; prints <c>keeper listening on HOST:PORT</c> once it accepts connections.</summary>
internal static class DevKeeper
{
    public static async Task<IAsyncDisposable?> StartAsync(string host, int port, string dataDir, CancellationToken stop)
    {
        Directory.CreateDirectory(dataDir);
        return await KeeperCommand.StartAsync(KeeperCommand.DevConfig(dataDir, host, port));
    }
}
