using Prometheus;

namespace Samsa.Net;

/// <summary>GET /metrics for a prometheus-net <see cref="CollectorRegistry"/> on an
/// <see cref="HttpGetListener"/>: the text exposition format 0.0.4, as Prometheus scrapes it.</summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The registry as Prometheus text (runs its before-collect callbacks).</summary>
    public static async Task<byte[]> SerializeAsync(CollectorRegistry registry, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(ms, ct).ConfigureAwait(false);
        return ms.ToArray();
    }

    /// <summary>A handler for <see cref="HttpGetListener"/> serving /metrics (and / for convenience).</summary>
    public static Func<string, string, CancellationToken, Task<HttpAnswer>> Handler(CollectorRegistry registry) => async (path, _, ct) =>
    {
        if (path is "/metrics" or "/")
            return new HttpAnswer(200, ContentType, await SerializeAsync(registry, ct).ConfigureAwait(false));
        return HttpAnswer.Text(404, "text/plain; charset=utf-8", "not found: try /metrics\n");
    };

    /// <summary>Starts an HTTP listener serving <paramref name="registry"/> at /metrics.</summary>
    public static HttpGetListener Serve(string name, System.Net.IPEndPoint endpoint, CollectorRegistry registry)
    {
        var l = new HttpGetListener(name, endpoint, Handler(registry));
        l.Start();
        return l;
    }
}
