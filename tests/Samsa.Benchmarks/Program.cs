using BenchmarkDotNet.Running;

namespace Samsa.Benchmarks;

public static class Program
{
    // Usage: dotnet run -c Release --project tests/Samsa.Benchmarks -- --filter '*' --job short
    //        dotnet run -c Release --project tests/Samsa.Benchmarks -- metrics-cpu   (CPU time, not wall time)
    public static void Main(string[] args)
    {
        if (args is ["metrics-cpu", ..])
        {
            MetricsRecordingBenchmarks.RunCpuTime(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 7);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
