namespace Samsa.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("usage: samsa dev | broker --config server.properties | keeper --config zoo.cfg | perf");
        return args.Length == 0 ? 2 : 1;
    }
}
