namespace Samsa.Host;

/// <summary>`samsa keeper`: the standalone Keeper, configured by zoo.cfg.</summary>
internal static class Keeper
{
    public static Task<int> RunAsync(string[] args) => KeeperCommand.RunAsync(args);
}

/// <summary>The Keeper half of `samsa dev`: an in-process Keeper that prints
/// `keeper listening on HOST:PORT` once it accepts connections.</summary>
internal static class DevKeeper
{
    public static async Task<IAsyncDisposable?> StartAsync(string host, int port, string dataDir, CancellationToken stop)
    {
        stop.ThrowIfCancellationRequested();
        Directory.CreateDirectory(dataDir);
        return await KeeperCommand.StartAsync(KeeperCommand.DevConfig(dataDir, host, port));
    }
}
