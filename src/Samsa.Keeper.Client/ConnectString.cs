namespace Samsa.Keeper.Client;

/// <summary>Parses upstream's connect string: "host1:port1,host2:port2[/chroot]" (ConnectStringParser).
/// A host without a port uses 2181; a chroot of "/" means none.</summary>
public sealed class ConnectString
{
    public const int DefaultPort = 2181;

    public ConnectString(IReadOnlyList<(string Host, int Port)> servers, string? chroot)
    {
        Servers = servers;
        Chroot = chroot;
    }

    public IReadOnlyList<(string Host, int Port)> Servers { get; }

    /// <summary>The chroot prefix without a trailing slash, or null.</summary>
    public string? Chroot { get; }

    public static ConnectString Parse(string connectString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectString);
        string hosts = connectString;
        string? chroot = null;
        int slash = connectString.IndexOf('/');
        if (slash >= 0)
        {
            string root = connectString[slash..];
            hosts = connectString[..slash];
            if (root.Length > 1)
            {
                KeeperPaths.Validate(root, nameof(connectString));
                chroot = root;
            }
        }
        var servers = new List<(string, int)>();
        foreach (var raw in hosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string host = raw;
            int port = DefaultPort;
            // "[::1]:2181" style IPv6 literals, else the last colon separates the port
            if (raw.StartsWith('['))
            {
                int close = raw.IndexOf(']');
                if (close < 0) throw new ArgumentException($"bad IPv6 literal in connect string: {raw}", nameof(connectString));
                host = raw[1..close];
                if (close + 1 < raw.Length)
                {
                    if (raw[close + 1] != ':') throw new ArgumentException($"bad server address: {raw}", nameof(connectString));
                    port = ParsePort(raw[(close + 2)..], raw);
                }
            }
            else
            {
                int colon = raw.LastIndexOf(':');
                if (colon >= 0)
                {
                    host = raw[..colon];
                    port = ParsePort(raw[(colon + 1)..], raw);
                }
            }
            if (host.Length == 0) throw new ArgumentException($"empty host in connect string: {raw}", nameof(connectString));
            servers.Add((host, port));
        }
        if (servers.Count == 0) throw new ArgumentException("connect string names no server", nameof(connectString));
        return new ConnectString(servers, chroot);
    }

    private static int ParsePort(string s, string raw)
    {
        if (!int.TryParse(s, out int port) || port is <= 0 or > 65535)
            throw new ArgumentException($"bad port in connect string: {raw}", "connectString");
        return port;
    }
}

/// <summary>Client-side path checks (upstream PathUtils.validatePath) and chroot mapping.</summary>
internal static class KeeperPaths
{
    public static void Validate(string path, string param = "path", bool sequential = false)
    {
        if (path is null) throw new ArgumentNullException(param);
        if (path.Length == 0) throw new ArgumentException("path length must be > 0", param);
        if (path[0] != '/') throw new ArgumentException($"path must start with / character: {path}", param);
        if (path.Length == 1) return;
        // a sequential create may end in "/": the server appends the counter
        if (path[^1] == '/' && !sequential) throw new ArgumentException($"path must not end with / character: {path}", param);
        string check = sequential ? path + "1" : path;
        var parts = check.Split('/');
        for (int i = 1; i < parts.Length; i++)
        {
            string p = parts[i];
            if (p.Length == 0) throw new ArgumentException($"empty node name at segment {i}: {path}", param);
            if (p is "." or "..") throw new ArgumentException($"relative paths not allowed: {path}", param);
            foreach (char c in p)
            {
                if (c == '\0' || (c > '\u0000' && c <= '\u001f') || (c >= '\u007f' && c <= '\u009f')
                    || (c >= '\ud800' && c <= '\uf8ff') || (c >= '\ufff0' && c <= '\uffff'))
                    throw new ArgumentException($"invalid character \\u{(int)c:x4} in path: {path}", param);
            }
        }
    }

    public static string ToServer(string? chroot, string clientPath)
    {
        if (chroot is null) return clientPath;
        return clientPath == "/" ? chroot : chroot + clientPath;
    }

    /// <summary>Strips the chroot from a server path (upstream ClientCnxn strips it from events
    /// and create results); a path outside the chroot is returned unchanged.</summary>
    public static string FromServer(string? chroot, string serverPath)
    {
        if (chroot is null) return serverPath;
        if (serverPath == chroot) return "/";
        if (serverPath.Length > chroot.Length && serverPath.StartsWith(chroot, StringComparison.Ordinal) && serverPath[chroot.Length] == '/')
            return serverPath[chroot.Length..];
        return serverPath;
    }
}
