using BenchmarkDotNet.Running;

namespace Samsa.Benchmarks;

public static class Program
{
    // Usage: dotnet run -c Release --project tests/Samsa.Benchmarks -- --filter '*' --job short
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
