using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>Maps txn types to their jute records (upstream SerializeUtils.deserializeTxn).</summary>
public static class TxnCodec
{
    public static IJuteRecord ReadTxn(int type, ReadOnlySpan<byte> bytes)
    {
        var r = new JuteReader(bytes, int.MaxValue);
        return ReadTxn(type, ref r);
    }

    public static IJuteRecord ReadTxn(int type, ref JuteReader r)
    {
        switch (type)
        {
            case OpCode.CreateSession: return CreateSessionTxn.Read(ref r);
            case OpCode.CloseSession:
                // Pre-3.6 logs have an empty closeSession body.
                return r.Remaining == 0 ? new CloseSessionTxn() : CloseSessionTxn.Read(ref r);
            case OpCode.Create:
            case OpCode.Create2:
            {
                // Upstream falls back to CreateTxnV0 (no parentCVersion) for old logs.
                int start = r.Position;
                var copy = r;
                try { return CreateTxn.Read(ref r); }
                catch (JuteException) { r = copy; _ = start; return CreateTxnV0.Read(ref r); }
            }
            case OpCode.CreateTTL: return CreateTTLTxn.Read(ref r);
            case OpCode.CreateContainer: return CreateContainerTxn.Read(ref r);
            case OpCode.Delete:
            case OpCode.DeleteContainer: return DeleteTxn.Read(ref r);
            case OpCode.Reconfig:
            case OpCode.SetData: return SetDataTxn.Read(ref r);
            case OpCode.SetACL: return SetACLTxn.Read(ref r);
            case OpCode.Error: return ErrorTxn.Read(ref r);
            case OpCode.Multi: return MultiTxn.Read(ref r);
            case OpCode.Check: return CheckVersionTxn.Read(ref r);
            default: throw new JuteException($"unknown txn type {type}");
        }
    }
}
