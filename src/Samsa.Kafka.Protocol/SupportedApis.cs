using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Protocol;

/// <summary>
/// The one table of APIs the broker serves and their version ranges. The dispatcher asks it
/// whether (key, version) is served; the ApiVersions handler answers from it, so the broker
/// never advertises what it does not serve (see docs/ARCHITECTURE.md: one source of truth per fact).
/// Handlers register at startup; lookups afterwards are lock-free reads of an immutable snapshot.
/// </summary>
public sealed class SupportedApis
{
    /// <summary>A served API and its inclusive version range.</summary>
    public readonly record struct Entry(ApiKey ApiKey, short MinVersion, short MaxVersion);

    private readonly object _lock = new();
    private volatile Entry?[] _byKey = [];
    private volatile Entry[] _sorted = [];
    private volatile List<ApiVersionsResponse.ApiVersion>? _shared;

    /// <summary>
    /// Declares that the broker serves <paramref name="apiKey"/> for versions
    /// <paramref name="minVersion"/>..<paramref name="maxVersion"/>. The range must lie inside the
    /// versions the generated schema defines (a handler cannot serve a version nobody can decode),
    /// and each key is registered once.
    /// </summary>
    public SupportedApis Register(ApiKey apiKey, short minVersion, short maxVersion)
    {
        if (!ApiMessages.TryGetVersionRange((short)apiKey, out var lowest, out var highest))
            throw new ArgumentException($"API key {(short)apiKey} has no schema", nameof(apiKey));
        if (minVersion > maxVersion)
            throw new ArgumentException($"{apiKey}: empty version range {minVersion}-{maxVersion}");
        if (minVersion < lowest || maxVersion > highest)
            throw new ArgumentException($"{apiKey}: range {minVersion}-{maxVersion} is outside the schema's {lowest}-{highest}");
        lock (_lock)
        {
            int key = (short)apiKey;
            var byKey = _byKey;
            if (key < byKey.Length && byKey[key] is not null)
                throw new InvalidOperationException($"{apiKey} is already registered");
            var next = new Entry?[Math.Max(byKey.Length, key + 1)];
            Array.Copy(byKey, next, byKey.Length);
            next[key] = new Entry(apiKey, minVersion, maxVersion);
            _sorted = next.Where(e => e.HasValue).Select(e => e!.Value).ToArray();
            _byKey = next;
            _shared = null;
        }
        return this;
    }

    /// <summary>All served APIs in key order.</summary>
    public IReadOnlyList<Entry> Entries => _sorted;

    /// <summary>Whether the broker serves this API key at all (any version).</summary>
    public bool IsServed(short apiKey) => TryGetRange(apiKey, out _, out _);

    /// <summary>Whether the broker serves <paramref name="apiKey"/> at <paramref name="version"/>.</summary>
    public bool IsServed(short apiKey, short version) =>
        TryGetRange(apiKey, out var min, out var max) && version >= min && version <= max;

    public bool TryGetRange(short apiKey, out short minVersion, out short maxVersion)
    {
        var byKey = _byKey;
        if (apiKey >= 0 && apiKey < byKey.Length && byKey[apiKey] is { } e)
        {
            minVersion = e.MinVersion;
            maxVersion = e.MaxVersion;
            return true;
        }
        minVersion = maxVersion = -1;
        return false;
    }

    /// <summary>The same list as <see cref="ToApiVersions"/>, built once and shared by every
    /// ApiVersions answer (clients send one per connection): callers must not change it.</summary>
    public List<ApiVersionsResponse.ApiVersion> SharedApiVersions() => _shared ??= ToApiVersions();

    /// <summary>The ApiKeys list of an ApiVersions response: every served API with its range, in key order.</summary>
    public List<ApiVersionsResponse.ApiVersion> ToApiVersions()
    {
        var sorted = _sorted;
        var list = new List<ApiVersionsResponse.ApiVersion>(sorted.Length);
        foreach (var e in sorted)
            list.Add(new ApiVersionsResponse.ApiVersion { ApiKey = (short)e.ApiKey, MinVersion = e.MinVersion, MaxVersion = e.MaxVersion });
        return list;
    }
}
