using Samsa.Keeper.Protocol;

namespace Samsa.Keeper.Server;

/// <summary>A KeeperException: carries the protocol error code to the reply header.</summary>
public sealed class KeeperException : Exception
{
    public KeeperException(int code, string? path = null) : base($"error {code}" + (path is null ? "" : " for " + path))
    {
        Code = code;
        Path = path;
    }

    public KeeperException(Code code, string? path = null) : this((int)code, path) { }

    public int Code { get; }
    public string? Path { get; }
}

/// <summary>CreateMode flags as sent in CreateRequest.flags.</summary>
public static class CreateMode
{
    public const int Persistent = 0;
    public const int Ephemeral = 1;
    public const int PersistentSequential = 2;
    public const int EphemeralSequential = 3;
    public const int Container = 4;
    public const int PersistentWithTtl = 5;
    public const int PersistentSequentialWithTtl = 6;

    public static bool IsValid(int flag) => flag is >= 0 and <= 6;
    public static bool IsSequential(int flag) => flag is PersistentSequential or EphemeralSequential or PersistentSequentialWithTtl;
    public static bool IsEphemeral(int flag) => flag is Ephemeral or EphemeralSequential;
    public static bool IsContainer(int flag) => flag == Container;
    public static bool IsTtl(int flag) => flag is PersistentWithTtl or PersistentSequentialWithTtl;
}

/// <summary>Watcher.Event.EventType and KeeperState numbers used in WatcherEvent.</summary>
public static class EventType
{
    public const int None = -1;
    public const int NodeCreated = 1;
    public const int NodeDeleted = 2;
    public const int NodeDataChanged = 3;
    public const int NodeChildrenChanged = 4;
    public const int SyncConnected = 3; // KeeperState
}

/// <summary>Watcher.WatcherType for checkWatches/removeWatches.</summary>
public static class WatcherType
{
    public const int Children = 1;
    public const int Data = 2;
    public const int Any = 3;
    public const int Persistent = 4;
    public const int PersistentRecursive = 5;
}

/// <summary>ZooDefs.Perms bits.</summary>
public static class Perms
{
    public const int Read = 1;
    public const int Write = 2;
    public const int Create = 4;
    public const int Delete = 8;
    public const int Admin = 16;
    public const int All = Read | Write | Create | Delete | Admin;
}

/// <summary>Special xids (upstream ClientCnxn).</summary>
public static class Xid
{
    public const int Notification = -1;
    public const int Ping = -2;
    public const int Auth = -4;
    public const int SetWatches = -8;
}

/// <summary>Upstream EphemeralType: how ephemeralOwner encodes containers and TTL nodes.</summary>
public static class EphemeralOwner
{
    /// <summary>Containers carry Long.MIN_VALUE as owner.</summary>
    public const long Container = long.MinValue;

    /// <summary>With extended types on, an owner whose top byte is 0xff is an extended type; type 0
    /// (bits 40..55) is TTL and the low 40 bits hold the ttl in ms.</summary>
    public const long ExtendedMask = unchecked((long)0xff00000000000000UL);
    public const long MaxTtl = 0x000000ffffffffffL;

    public static long ForTtl(long ttl) => ExtendedMask | ttl;

    public static bool IsContainer(long owner) => owner == Container;

    public static bool IsTtl(long owner, bool extendedTypesEnabled) =>
        extendedTypesEnabled && (owner & ExtendedMask) == ExtendedMask && ((owner >> 40) & 0xffff) == 0 && owner != Container;

    public static long TtlOf(long owner) => owner & MaxTtl;

    /// <summary>The value clients see in Stat.ephemeralOwner: 0 for containers and TTL nodes
    /// (upstream DataNode.getClientEphemeralOwner).</summary>
    public static long ForClient(long owner, bool extendedTypesEnabled) =>
        IsContainer(owner) || IsTtl(owner, extendedTypesEnabled) ? 0 : owner;

    /// <summary>True when the owner names a client session (a plain ephemeral node).</summary>
    public static bool IsSessionOwner(long owner, bool extendedTypesEnabled) =>
        owner != 0 && !IsContainer(owner) && !IsTtl(owner, extendedTypesEnabled);
}
