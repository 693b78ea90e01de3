using System.Text;

namespace Samsa.Kafka.Protocol.Tests;

internal static class TestData
{
    public static string GoldenPath(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    public static byte[] Golden(string name) => File.ReadAllBytes(GoldenPath(name));

    /// <summary>Compressible text resembling JSON events, of about <paramref name="size"/> bytes.</summary>
    public static byte[] JsonLike(int size, int seed = 1)
    {
        var random = new Random(seed);
        var sb = new StringBuilder(size + 200);
        string[] events = ["click", "view", "purchase", "share", "login"];
        int i = 0;
        while (sb.Length < size)
        {
            sb.Append("{\"id\":").Append(i++).Append(",\"user\":\"user-").Append(random.Next(5000))
              .Append("\",\"event\":\"").Append(events[random.Next(events.Length)])
              .Append("\",\"amount\":").Append(random.Next(100000) / 100.0)
              .Append(",\"session\":\"").Append(Guid.NewGuid().ToString("N")[..random.Next(4, 20)]).Append("\"}\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString(0, size));
    }
}
