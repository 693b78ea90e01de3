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
        internal override int OpCode => Samsa.Keeper.Protocol.OpCode.Delete;
        internal override IJuteRecord ToRecord(string serverPath) => new DeleteRequest { Path = serverPath, Version = version };
    }

    internal sealed class SetDataOp(string path, byte[] data, int version) : Op(path)
    {
        internal override int OpCode => Samsa.Keeper.Protocol.OpCode.SetData;
        internal override IJuteRecord ToRecord(string serverPath) => new SetDataRequest { Path = serverPath, Data = data, Version = version };
    }

    internal sealed class CheckOp(string path, int version) : Op(path)
    {
        internal override int OpCode => Samsa.Keeper.Protocol.OpCode.Check;
        internal override IJuteRecord ToRecord(string serverPath) => new CheckVersionRequest { Path = serverPath, Version = version };
    }

    internal sealed class GetDataOp(string path) : Op(path)
    {
        internal override int OpCode => Samsa.Keeper.Protocol.OpCode.GetData;
        internal override IJuteRecord ToRecord(string serverPath) => new GetDataRequest { Path = serverPath, Watch = false };
    }

    internal sealed class GetChildrenOp(string path) : Op(path)
    {
        internal override int OpCode => Samsa.Keeper.Protocol.OpCode.GetChildren;
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

/// <summary>Special xids (upstream ClientCnxn): replies carrying them are not matched against the
/// queue of outstanding requests.</summary>
internal static class Xids
{
    public const int Notification = -1;
    public const int Ping = -2;
    public const int Auth = -4;
    public const int SetWatches = -8;
}
