using Samsa.Keeper.Protocol;

namespace Samsa.Keeper.Client;

/// <summary>A failed ZooKeeper operation: the server's (or the connection's) error code and the
/// path the operation named, relative to the chroot. For a failed multi, <see cref="Results"/>
/// holds every op's outcome, as upstream's KeeperException.getResults does.</summary>
public sealed class KeeperException : Exception
{
    public KeeperException(Code code, string? path = null, IReadOnlyList<OpResult>? results = null, Exception? inner = null)
        : base(Describe(code, path), inner)
    {
        Code = code;
        Path = path;
        Results = results;
    }

    public Code Code { get; }
    public string? Path { get; }
    public IReadOnlyList<OpResult>? Results { get; }

    /// <summary>Unknown numbers are kept as the raw value so nothing the server says is lost.</summary>
    public static Code ToCode(int err) => (Code)err;

    private static string Describe(Code code, string? path)
    {
        string text = code switch
        {
            Code.NoNode => "no node",
            Code.NodeExists => "node exists",
            Code.BadVersion => "bad version",
            Code.NotEmpty => "directory not empty",
            Code.NoAuth => "not authenticated",
            Code.ConnectionLoss => "connection loss",
            Code.SessionExpired => "session expired",
            Code.NoChildrenForEphemerals => "ephemeral nodes may not have children",
            Code.InvalidAcl => "invalid ACL",
            Code.AuthFailed => "authentication failed",
            Code.NoWatcher => "no such watcher",
            Code.BadArguments => "bad arguments",
            Code.Unimplemented => "unimplemented",
            Code.MarshallingError => "marshalling error",
            Code.OperationTimeout => "operation timeout",
            _ => Enum.IsDefined(code) ? code.ToString() : "error " + (int)code,
        };
        return $"KeeperErrorCode = {code} ({(int)code}): {text}" + (path is null ? "" : " for " + path);
    }
}
