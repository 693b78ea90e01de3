using System.Security.Cryptography;
using System.Text;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Client;

/// <summary>Upstream CreateMode; the numbers are the CreateRequest.flags values.</summary>
public enum CreateMode
{
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    Container = 4,
    PersistentWithTtl = 5,
    PersistentSequentialWithTtl = 6,
}

/// <summary>Upstream Watcher.Event.KeeperState.</summary>
public enum KeeperState
{
    Unknown = -1,
    Disconnected = 0,
    SyncConnected = 3,
    AuthFailed = 4,
    ConnectedReadOnly = 5,
    SaslAuthenticated = 6,
    Closed = 7,
    Expired = -112,
}

/// <summary>Upstream Watcher.Event.EventType. The *Removed types are produced by this client when
/// removeWatches takes a watcher away, as upstream's client does.</summary>
public enum EventType
{
    None = -1,
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
    DataWatchRemoved = 5,
    ChildWatchRemoved = 6,
    PersistentWatchRemoved = 7,
}

/// <summary>Upstream Watcher.WatcherType, the type field of removeWatches/checkWatches.</summary>
public enum WatcherType
{
    Children = 1,
    Data = 2,
    Any = 3,
    Persistent = 4,
    PersistentRecursive = 5,
}

/// <summary>Upstream AddWatchMode: the mode field of AddWatchRequest.</summary>
public enum AddWatchMode
{
    Persistent = 0,
    PersistentRecursive = 1,
}

/// <summary>A watch notification or a connection state change (Type None, Path null).
/// Paths are relative to the client's chroot.</summary>
public sealed record WatchedEvent(EventType Type, KeeperState State, string? Path);

/// <summary>A watch callback. Callbacks run one at a time, in the order events arrived, on the
/// client's event task (upstream's EventThread); a slow callback delays the next ones.</summary>
public delegate void Watcher(WatchedEvent e);

/// <summary>ZooDefs.Perms bits.</summary>
[Flags]
public enum Perms
{
    None = 0,
    Read = 1,
    Write = 2,
    Create = 4,
    Delete = 8,
    Admin = 16,
    All = Read | Write | Create | Delete | Admin,
}

/// <summary>Ready-made ACL lists (upstream ZooDefs.Ids) and the digest scheme's id helper.</summary>
public static class Acls
{
    public static Id AnyoneId => new() { Scheme = "world", IdValue = "anyone" };
    public static Id AuthIds => new() { Scheme = "auth", IdValue = "" };

    /// <summary>world:anyone with every permission.</summary>
    public static List<ACL> OpenAclUnsafe => new() { new ACL { Perms = (int)Perms.All, Id = AnyoneId } };

    /// <summary>world:anyone may read.</summary>
    public static List<ACL> ReadAclUnsafe => new() { new ACL { Perms = (int)Perms.Read, Id = AnyoneId } };

    /// <summary>Every permission for the identities the creating session authenticated with.</summary>
    public static List<ACL> CreatorAllAcl => new() { new ACL { Perms = (int)Perms.All, Id = AuthIds } };

    public static ACL Of(Perms perms, string scheme, string id) => new() { Perms = (int)perms, Id = new Id { Scheme = scheme, IdValue = id } };

    /// <summary>The digest scheme's id for user:password, as upstream DigestAuthenticationProvider
    /// computes it: "user:" + base64(sha1("user:password")).</summary>
    public static string DigestId(string user, string password)
    {
        byte[] hash = SHA1.HashData(Encoding.UTF8.GetBytes(user + ":" + password));
        return user + ":" + Convert.ToBase64String(hash);
    }

    public static ACL Digest(string user, string password, Perms perms) => Of(perms, "digest", DigestId(user, password));
}

/// <summary>A whoAmI entry: an authentication scheme and the user it identified.</summary>
public sealed record ClientIdentity(string Scheme, string User);
