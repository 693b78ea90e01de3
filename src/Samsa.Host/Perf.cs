namespace Samsa.Host;

/// <summary><c>samsa perf</c>: load generators against a broker; see PerfRunner.</summary>
internal static class Perf
{
    public static Task<int> RunAsync(string[] args) =>
        args.Length > 0 && args[0] == "group" ? GroupPerf.RunAsync(args) : PerfRunner.RunAsync(args);
}
