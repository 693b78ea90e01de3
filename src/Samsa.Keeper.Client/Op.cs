using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Client;

/// <summary>One operation of a multi (transaction) or multiRead request. Build with the static
/// factories; paths are relative to the chroot.</summary>
public abstract class Op
{
    private protected Op(string path) { Path = path; }

    public string Path { get; }
    internal abstract int OpCode { get; }
    internal abstract IJuteRecord ToRecord(string serverPath);
    internal virtual bool IsSequential => false;

    public static Op Create(string path, byte[]? data, List<ACL> acl, CreateMode mode = CreateMode.Persistent, long ttl = -1) =>
        new CreateOp(path, data ?? Array.Empty<byte>(), acl, mode, ttl);
    public static Op Delete(string path, int version = -1) => new DeleteOp(path, version);
    public static Op SetData(string path, byte[]? data, int version = -1) => new SetDataOp(path, data ?? Array.Empty<byte>(), version);
    public static Op Check(string path, int version) => new CheckOp(path, version);
    /// <summary>Read ops, for multiRead only.</summary>
    public static Op GetData(string path) => new GetDataOp(path);
    public static Op GetChildren(string path) => new GetChildrenOp(path);

    internal sealed class CreateOp : Op
    {
        public CreateOp(string path, byte[] data, List<ACL> acl, CreateMode mode, long ttl) : base(path)
        {
            Data = data; Acl = acl; Mode = mode; Ttl = ttl;
            KeeperClient.ValidateTtl(mode, ttl);
        }
        public byte[] Data { get; }
        public List<ACL> Acl { get; }
        public CreateMode Mode { get; }
        public long Ttl { get; }
        internal override bool IsSequential => Mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential or CreateMode.PersistentSequentialWithTtl;
        internal override int OpCode => KeeperClient.CreateOpCode(Mode);
        internal override IJuteRecord ToRecord(string serverPath) => KeeperClient.CreateRecord(serverPath, Data, Acl, Mode, Ttl);
    }

    internal sealed class DeleteOp(string path, int version) : Op(path)
    {
        internal override int OpCode => OpCodes.Delete;
        internal override IJuteRecord ToRecord(string serverPath) => new DeleteRequest { Path = serverPath, Version = version };
    }

    internal sealed class SetDataOp(string path, byte[] data, int version) : Op(path)
    {
        internal override int OpCode => OpCodes.SetData;
        internal override IJuteRecord ToRecord(string serverPath) => new SetDataRequest { Path = serverPath, Data = data, Version = version };
    }

    internal sealed class CheckOp(string path, int version) : Op(path)
    {
        internal override int OpCode => OpCodes.Check;
        internal override IJuteRecord ToRecord(string serverPath) => new CheckVersionRequest { Path = serverPath, Version = version };
    }

    internal sealed class GetDataOp(string path) : Op(path)
    {
        internal override int OpCode => OpCodes.GetData;
        internal override IJuteRecord ToRecord(string serverPath) => new GetDataRequest { Path = serverPath, Watch = false };
    }

    internal sealed class GetChildrenOp(string path) : Op(path)
    {
        internal override int OpCode => OpCodes.GetChildren;
        internal override IJuteRecord ToRecord(string serverPath) => new GetChildrenRequest { Path = serverPath, Watch = false };
    }
}

/// <summary>The outcome of one op of a multi or multiRead.</summary>
public abstract record OpResult
{
    public sealed record Create(string Path, Stat? Stat) : OpResult;
    public sealed record Delete : OpResult;
    public sealed record SetData(Stat Stat) : OpResult;
    public sealed record Check : OpResult;
    public sealed record GetData(byte[] Data, Stat Stat) : OpResult;
    public sealed record GetChildren(IReadOnlyList<string> Children) : OpResult;
    /// <summary>The op failed with <paramref name="Code"/>; in a failed transaction the ops that
    /// did not fail themselves report Ok (before the failure) or RuntimeInconsistency (after it).</summary>
    public sealed record Error(Code Code) : OpResult;
}

/// <summary>Request types (upstream ZooDefs.OpCode).</summary>
internal static class OpCodes
{
    public const int Create = 1;
    public const int Delete = 2;
    public const int Exists = 3;
    public const int GetData = 4;
    public const int SetData = 5;
    public const int GetACL = 6;
    public const int SetACL = 7;
    public const int GetChildren = 8;
    public const int Sync = 9;
    public const int Ping = 11;
    public const int GetChildren2 = 12;
    public const int Check = 13;
    public const int Multi = 14;
    public const int Create2 = 15;
    public const int CheckWatches = 17;
    public const int RemoveWatches = 18;
    public const int CreateContainer = 19;
    public const int CreateTTL = 21;
    public const int MultiRead = 22;
    public const int Auth = 100;
    public const int SetWatches = 101;
    public const int GetEphemerals = 103;
    public const int GetAllChildrenNumber = 104;
    public const int SetWatches2 = 105;
    public const int AddWatch = 106;
    public const int WhoAmI = 107;
    public const int CloseSession = -11;
    public const int Error = -1;
}

/// <summary>Special xids (upstream ClientCnxn): replies carrying them are not matched against the
/// queue of outstanding requests.</summary>
internal static class Xids
{
    public const int Notification = -1;
    public const int Ping = -2;
    public const int Auth = -4;
    public const int SetWatches = -8;
}
