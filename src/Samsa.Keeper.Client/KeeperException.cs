namespace Samsa.Keeper.Client;

/// <summary>Error codes as upstream's KeeperException.Code numbers them; the server sends them in
/// ReplyHeader.err and in multi results.</summary>
public enum Code
{
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    Throttled = -127,
}

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
