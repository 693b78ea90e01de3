using System.Text;

namespace Samsa.Benchmarks;

internal static class BenchData
{
    public const int OneMiB = 1 << 20;

    /// <summary>JSON-like event lines, the kind of payload Kafka topics typically carry.</summary>
    public static byte[] JsonLike(int size, int seed = 1)
    {
        var random = new Random(seed);
        var sb = new StringBuilder(size + 200);
        string[] events = ["click", "view", "purchase", "share", "login"];
        string[] countries = ["DE", "FR", "US", "BR", "JP", "IN"];
        int i = 0;
        while (sb.Length < size)
        {
            sb.Append("{\"id\":").Append(i++)
              .Append(",\"ts\":").Append(1_700_000_000_000L + i * 17)
              .Append(",\"user\":\"user-").Append(random.Next(50_000))
              .Append("\",\"event\":\"").Append(events[random.Next(events.Length)])
              .Append("\",\"country\":\"").Append(countries[random.Next(countries.Length)])
              .Append("\",\"amount\":").Append(random.Next(1_000_000) / 100.0)
              .Append(",\"session\":\"").Append(random.NextInt64().ToString("x16")).Append("\"}\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString(0, size));
    }
}
