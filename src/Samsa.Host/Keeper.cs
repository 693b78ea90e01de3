namespace Samsa.Host;

/// <summary>
/// <c>samsa keeper</c>. The Keeper server is built on its own branch and provides
/// <c>KeeperCommand</c>; until it is merged this build says so rather than pretending to run.
/// </summary>
internal static class Keeper
{
    public static Task<int> RunAsync(string[] args)
    {
        Console.Error.WriteLine("samsa keeper: the Keeper is not part of this build");
        return Task.FromResult(1);
    }
}

/// <summary>
/// The Keeper half of <c>samsa dev</c>. Returns null while the Keeper is not part of this
/// build; the integration replaces the body with an in-process Keeper start that prints
/// <c>keeper listening on HOST:PORT</c>.
/// </summary>
internal static class DevKeeper
{
    public static Task<IAsyncDisposable?> StartAsync(string host, int port, string dataDir, CancellationToken stop)
    {
        Console.Error.WriteLine("samsa dev: the Keeper is not part of this build; starting the broker only");
        return Task.FromResult<IAsyncDisposable?>(null);
    }
}
