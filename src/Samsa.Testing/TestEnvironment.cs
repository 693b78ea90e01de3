using System.Net;
using System.Net.Sockets;

namespace Samsa.Testing;

/// <summary>Where test processes find the samsa executable and free loopback ports.</summary>
public static class TestEnvironment
{
    /// <summary>The samsa executable of the calling test's build configuration: a test project
    /// under tests/&lt;name&gt;/bin/&lt;Config&gt;/&lt;tfm&gt;/ builds src/Samsa.Host alike through a
    /// ProjectReference that does not reference its assembly.</summary>
    public static string SamsaExecutable()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = dir.Name, config = dir.Parent?.Name ?? "Release";
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compat.sln"))) dir = dir.Parent;
        if (dir is null) throw new FileNotFoundException($"no Compat.sln above {AppContext.BaseDirectory}");
        string bin = Path.Combine(dir.FullName, "src", "Samsa.Host", "bin", config, tfm, "samsa");
        if (!File.Exists(bin)) throw new FileNotFoundException($"{bin} is missing: build src/Samsa.Host -c {config}", bin);
        return bin;
    }

    /// <summary>A port in [portBase, portBase + 100) that is free on 127.0.0.1 now, starting at a
    /// random point so that test projects running side by side rarely pick the same one.</summary>
    public static int FreePort(int portBase)
    {
        int offset = Random.Shared.Next(100);
        for (int i = 0; i < 100; i++)
        {
            int p = portBase + (offset + i) % 100;
            try
            {
                var l = new TcpListener(IPAddress.Loopback, p);
                l.Start();
                l.Stop();
                return p;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException($"no free port in {portBase}-{portBase + 99}");
    }
}
