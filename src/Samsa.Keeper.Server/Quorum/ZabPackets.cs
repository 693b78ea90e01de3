using System.Buffers.Binary;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server.Quorum;

/// <summary>QuorumPacket types (upstream Leader.java constants).</summary>
public static class ZabType
{
    public const int Request = 1, Proposal = 2, Ack = 3, Commit = 4, Ping = 5, Revalidate = 6, Sync = 7, Inform = 8,
        CommitAndActivate = 9, NewLeader = 10, FollowerInfo = 11, UpToDate = 12, Diff = 13, Trunc = 14, Snap = 15,
        ObserverInfo = 16, LeaderInfo = 17, AckEpoch = 18, InformAndActivate = 19;

    /// <summary>Upstream's ZAB protocol version sent in LEADERINFO and LearnerInfo (0x10000, "ZAB 1.0").</summary>
    public const int ProtocolVersion = 0x10000;

    public static string Name(int t) => t switch
    {
        Request => "REQUEST", Proposal => "PROPOSAL", Ack => "ACK", Commit => "COMMIT", Ping => "PING", Revalidate => "REVALIDATE",
        Sync => "SYNC", Inform => "INFORM", CommitAndActivate => "COMMITANDACTIVATE", NewLeader => "NEWLEADER", FollowerInfo => "FOLLOWERINFO",
        UpToDate => "UPTODATE", Diff => "DIFF", Trunc => "TRUNC", Snap => "SNAP", ObserverInfo => "OBSERVERINFO", LeaderInfo => "LEADERINFO",
        AckEpoch => "ACKEPOCH", InformAndActivate => "INFORMANDACTIVATE", _ => "UNKNOWN" + t,
    };

    public static long MakeZxid(long epoch, long counter) => (epoch << 32) | (counter & 0xffffffffL);
    public static long EpochOf(long zxid) => zxid >>> 32;
}

/// <summary>
/// Reads the quorum port's byte stream the way upstream's BinaryInputArchive does: QuorumPackets are
/// jute records written back to back with no frame around them, and a SNAP packet is followed by
/// the snapshot itself (sessions, ACL cache, nodes, then the string "BenWasHere"), so the stream is
/// read field by field. Buffer and string lengths are checked against jute.maxbuffer before anything
/// is allocated, as upstream's checkLength does.
/// </summary>
public sealed class ZabReader
{
    private readonly Stream _s;
    private readonly int _maxBuffer;
    private readonly byte[] _eight = new byte[8];

    public ZabReader(Stream s, int maxBuffer) { _s = s; _maxBuffer = maxBuffer; }

    public int ReadInt() { _s.ReadExactly(_eight, 0, 4); return BinaryPrimitives.ReadInt32BigEndian(_eight); }
    public long ReadLong() { _s.ReadExactly(_eight, 0, 8); return BinaryPrimitives.ReadInt64BigEndian(_eight); }

    public byte[]? ReadBuffer()
    {
        int len = ReadInt();
        if (len < 0) return null;
        // upstream BinaryInputArchive.checkLength: maxBuffer plus its 1024-byte allowance
        if (len > _maxBuffer + 1024) throw new InvalidDataException($"Unreasonable length = {len}");
        var b = new byte[len];
        _s.ReadExactly(b);
        return b;
    }

    public string? ReadString() => ReadBuffer() is { } b ? Encoding.UTF8.GetString(b) : null;

    public QuorumPacket ReadPacket()
    {
        var p = new QuorumPacket { Type = ReadInt(), Zxid = ReadLong(), Data = ReadBuffer() };
        int n = ReadInt();
        if (n > 1024) throw new InvalidDataException($"authinfo with {n} entries");
        if (n >= 0)
        {
            p.Authinfo = new List<Id>(n);
            for (int i = 0; i < n; i++) p.Authinfo.Add(new Id { Scheme = ReadString(), IdValue = ReadString() });
        }
        return p;
    }

    /// <summary>The snapshot a leader streams after SNAP (upstream SerializeUtils.serializeSnapshot
    /// then DataTree.serialize): session count and (id, timeout) pairs, the ACL cache, the nodes
    /// depth-first ending with the path "/"; then the signature "BenWasHere" (LearnerHandler).
    /// Loads it into <paramref name="tree"/>.</summary>
    public Dictionary<long, int> ReadSnapshot(DataTree tree)
    {
        var sessions = new Dictionary<long, int>();
        int count = ReadInt();
        if (count < 0) throw new InvalidDataException($"snapshot with {count} sessions");
        for (int i = 0; i < count; i++) { long id = ReadLong(); sessions[id] = ReadInt(); }
        tree.ClearForLoad();
        int acls = ReadInt();
        for (int i = 0; i < acls; i++)
        {
            long id = ReadLong();
            int n = ReadInt();
            if (n > 65536) throw new InvalidDataException($"ACL list of {n} entries");
            var list = new List<ACL>(Math.Max(n, 0));
            for (int j = 0; j < n; j++) list.Add(new ACL { Perms = ReadInt(), Id = new Id { Scheme = ReadString(), IdValue = ReadString() } });
            tree.Acls.Load(id, list);
        }
        while (true)
        {
            string p = ReadString() ?? throw new InvalidDataException("null node path in the snapshot stream");
            if (p == "/") break;
            if (p != "" && !PathUtils.IsValid(p)) throw new InvalidDataException($"node path \"{p}\" in the snapshot stream is not a znode path");
            var data = ReadBuffer();
            long acl = ReadLong();
            var node = new DataNode
            {
                Data = data, Acl = acl, Czxid = ReadLong(), Mzxid = ReadLong(), Ctime = ReadLong(), Mtime = ReadLong(),
                Version = ReadInt(), Cversion = ReadInt(), Aversion = ReadInt(), EphemeralOwner = ReadLong(), Pzxid = ReadLong(),
            };
            tree.LoadNode(p == "" ? "/" : p, node);
        }
        tree.FinishLoad();
        if (tree.GetNode("/") is null) throw new InvalidDataException("the snapshot stream has no root");
        string? sig = ReadString();
        if (sig != "BenWasHere") throw new InvalidDataException($"Missing signature. Got {sig}");
        return sessions;
    }
}

public static class ZabWriter
{
    public static void Write(Stream s, int type, long zxid, byte[]? data, List<Id>? authInfo = null)
    {
        var p = new QuorumPacket { Type = type, Zxid = zxid, Data = data, Authinfo = authInfo };
        s.Write(p.ToBytes());
        s.Flush();
    }

    /// <summary>A PROPOSAL's data: TxnHeader, txn and (3.6+) TxnDigest, as in a txn log entry
    /// (upstream Util.marshallTxnEntry / SerializeUtils.deserializeTxn).</summary>
    public static (TxnHeader Hdr, IJuteRecord Txn, TxnDigest? Digest) ReadTxnEntry(byte[] data)
    {
        var r = new JuteReader(data, int.MaxValue);
        var hdr = TxnHeader.Read(ref r);
        var txn = TxnCodec.ReadTxn(hdr.Type, ref r);
        TxnDigest? digest = r.Remaining >= 12 ? TxnDigest.Read(ref r) : null;
        return (hdr, txn, digest);
    }
}
