using System.Diagnostics;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

public sealed partial class KeeperServer
{
    private static bool IsWrite(int type) => type is OpCode.Create or OpCode.Create2 or OpCode.CreateContainer
        or OpCode.CreateTTL or OpCode.Delete or OpCode.SetData or OpCode.SetACL or OpCode.Check
        or OpCode.Multi or OpCode.Reconfig or OpCode.DeleteContainer;

    private void HandleRequest(ServerConnection conn, byte[] frame, long received)
    {
        var r = new JuteReader(frame, Config.JuteMaxBuffer);
        RequestHeader h;
        try { h = RequestHeader.Read(ref r); }
        catch (JuteException) { QueueClose(conn); return; }
        // in an ensemble, a request waits behind this session's requests still at the leader
        if (HoldBehindForwarded(conn, h.Type, frame, received)) return;

        if (!_sessions.TryGetValue(conn.SessionId, out var session) || session.Owner != conn)
        {
            // the session expired or moved while this request was queued
            QueueClose(conn);
            return;
        }
        Touch(session, Now);

        var body = frame.AsSpan(r.Position);
        string lastOp = "NA";
        int err = (int)Code.Ok;
        IJuteRecord? rsp = null;
        try
        {
            // upstream ZooKeeperServer.processPacket: everything but auth and sasl packets (pings
            // and closeSession included) passes AuthenticationHelper.enforceAuthentication
            if (h.Type != OpCode.Auth && h.Type != OpCode.Sasl && !EnforceAuthentication(conn, h.Xid)) return;
            // read-only connections and local sessions (KeeperServer.ReadOnly / .LocalSessions)
            if (_leaderLink is not null && HandleMemberSessionRequest(conn, session, h, body, received)) return;
            if (_leaderLink is not null && (h.Type == OpCode.CloseSession || IsWrite(h.Type)))
            {
                ForwardToLeader(conn, h, body, received);
                return;
            }
            if (_leaderLink is not null && h.Type == OpCode.Sync)
            {
                ForwardSync(conn, h, body, received);
                return;
            }
            switch (h.Type)
            {
                case OpCode.Ping:
                    lastOp = "PING";
                    Reply(conn, h.Xid, Tree.LastProcessedZxid, 0, null, "PING", received);
                    return;
                case OpCode.Auth:
                    HandleAuth(conn, h, body);
                    return;
                case OpCode.Sasl:
                    HandleSasl(conn, h, body, received);
                    return;
                case OpCode.CreateSession:
                    // A createSession opcode on an established session has no CreateSessionTxn body
                    // to read: upstream answers MarshallingError.
                    Reply(conn, h.Xid, Tree.LastProcessedZxid, (int)Code.MarshallingError, null, "NA", received);
                    return;
                case OpCode.CloseSession:
                    lastOp = "CLOS";
                    // the reply goes out before the connection closes, so detach it from the session first
                    session.Owner = null;
                    CloseSession(session, h.Xid);
                    Reply(conn, h.Xid, Tree.LastProcessedZxid, 0, null, lastOp, received);
                    QueueClose(conn);
                    return;
            }
            if (!OpCode.IsValidClientRequest(h.Type))
            {
                // Upstream UnimplementedRequestProcessor: Unimplemented, then the connection is closed.
                Reply(conn, h.Xid, -1, (int)Code.Unimplemented, null, "NA", received);
                QueueClose(conn);
                return;
            }
            if (IsWrite(h.Type))
            {
                (rsp, err, lastOp) = HandleWrite(conn, session, h, body);
            }
            else
            {
                (rsp, lastOp) = HandleRead(conn, h, body);
            }
        }
        catch (KeeperException e)
        {
            err = e.Code;
            rsp = null;
        }
        catch (JuteException)
        {
            err = (int)Code.MarshallingError;
            rsp = null;
        }
        Reply(conn, h.Xid, Tree.LastProcessedZxid, err, err == 0 ? rsp : null, lastOp, received);
    }

    private void Reply(ServerConnection conn, int xid, long zxid, int err, IJuteRecord? rsp, string lastOp, long received)
    {
        QueueOutput(conn, Frame(new ReplyHeader { Xid = xid, Zxid = zxid, Err = err }, rsp));
        long latency = (long)Stopwatch.GetElapsedTime(received).TotalMilliseconds;
        conn.LastOp = lastOp;
        conn.LastCxid = xid;
        conn.LastZxid = zxid;
        conn.LastResponseTime = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        conn.MinLatency = Math.Min(conn.MinLatency, latency);
        conn.MaxLatency = Math.Max(conn.MaxLatency, latency);
        conn.TotalLatency += latency;
        conn.LatencyCount++;
        Stats.Requests++;
        Stats.PacketsSent++;
        Stats.MinLatency = Math.Min(Stats.MinLatency, latency);
        Stats.MaxLatency = Math.Max(Stats.MaxLatency, latency);
        Stats.TotalLatency += latency;
        Metrics.Replied(lastOp, latency);
    }

    /// <summary>setAuth (xid -4): known schemes add ids; anything else is AuthFailed and the
    /// connection is closed, as upstream does.</summary>
    private void HandleAuth(ServerConnection conn, RequestHeader h, ReadOnlySpan<byte> body)
    {
        AuthPacket p;
        try
        {
            var r = new JuteReader(body, Config.JuteMaxBuffer);
            p = AuthPacket.Read(ref r);
        }
        catch (JuteException) { QueueClose(conn); return; }
        var ids = _auth.Authenticate(p.Scheme, p.Auth, conn.RemoteEndPoint);
        if (ids is null)
        {
            QueueOutput(conn, Frame(new ReplyHeader { Xid = h.Xid, Zxid = 0, Err = (int)Code.AuthFailed }, null));
            QueueClose(conn);
            return;
        }
        foreach (var id in ids)
            if (!conn.AuthInfo.Any(a => a.Scheme == id.Scheme && a.IdValue == id.IdValue)) conn.AuthInfo.Add(id);
        QueueOutput(conn, Frame(new ReplyHeader { Xid = h.Xid, Zxid = 0, Err = 0 }, null));
    }

    /// <summary>Upstream AuthenticationHelper.enforceAuthentication: with enforce.auth.enabled (or
    /// sessionRequireClientSASLAuth) a connection holding none of the required schemes gets
    /// SessionClosedRequireSaslAuth and is closed; its session stays until it expires.</summary>
    private bool EnforceAuthentication(ServerConnection conn, int xid)
    {
        if (!Security.EnforceAuthEnabled) return true;
        foreach (var id in conn.AuthInfo)
            if (id.Scheme is not null && Security.EnforceAuthSchemes.Contains(id.Scheme)) return true;
        Console.Error.WriteLine($"keeper: Client authentication scheme(s) [{string.Join(", ", conn.AuthInfo.Select(a => a.Scheme))}] does not match with any of the expected authentication scheme [{string.Join(", ", Security.EnforceAuthSchemes)}], closing session 0x{conn.SessionId:x} from {conn.RemoteEndPoint}.");
        QueueOutput(conn, Frame(new ReplyHeader { Xid = xid, Zxid = 0, Err = (int)Code.SessionClosedRequireSaslAuth }, null));
        QueueClose(conn);
        conn.Closed = true;
        return false;
    }

    /// <summary>Upstream ZooKeeperServer.processSasl: one step of the connection's DIGEST-MD5
    /// exchange per packet (the first token is empty). On completion the connection gains
    /// sasl:USER (and super for zookeeper.superUser). A failed exchange is answered AuthFailed
    /// (SessionClosedRequireSaslAuth when SASL is required) with an empty SetSASLResponse and the
    /// connection is closed, unless zookeeper.allowSaslFailedClients keeps it. Without a JAAS
    /// Server section the answer is OK with a null token, as upstream without a SaslServer.</summary>
    private void HandleSasl(ServerConnection conn, RequestHeader h, ReadOnlySpan<byte> body, long received)
    {
        GetSASLRequest req;
        try
        {
            var r = new JuteReader(body, Config.JuteMaxBuffer);
            req = GetSASLRequest.Read(ref r);
        }
        catch (JuteException e)
        {
            Console.Error.WriteLine($"keeper: closing connection from {conn.RemoteEndPoint}: unreadable SASL packet ({e.Message})");
            QueueClose(conn);
            conn.Closed = true;
            return;
        }
        byte[]? token = null;
        if (Security.SaslUsers is not null)
        {
            try
            {
                conn.Sasl ??= new DigestMd5.Server(Security.SaslPassword);
                token = conn.Sasl.EvaluateResponse(req.Token ?? Array.Empty<byte>());
                if (conn.Sasl.IsComplete)
                {
                    string user = conn.Sasl.AuthorizationId!;
                    Console.Error.WriteLine($"keeper: Session 0x{conn.SessionId:x}: adding SASL authorization for authorizationID: {user}");
                    AddAuthId(conn, new Id { Scheme = "sasl", IdValue = user });
                    if (Security.IsSaslSuperUser(user)) AddAuthId(conn, new Id { Scheme = "super", IdValue = "" });
                }
            }
            catch (SaslAuthenticationException e)
            {
                Console.Error.WriteLine($"keeper: Client {conn.RemoteEndPoint} failed to SASL authenticate: {e.Message}");
                if (!(Security.AllowSaslFailedClients && !Security.SaslAuthRequired))
                {
                    int err = Security.SaslAuthRequired ? (int)Code.SessionClosedRequireSaslAuth : (int)Code.AuthFailed;
                    // upstream sends the empty SetSASLResponse after the error header, then closes
                    QueueOutput(conn, Frame(new ReplyHeader { Xid = h.Xid, Zxid = 0, Err = err }, new SetSASLResponse { Token = null }));
                    QueueClose(conn);
                    conn.Closed = true;
                    return;
                }
                token = null;
            }
        }
        Reply(conn, h.Xid, 0, 0, new SetSASLResponse { Token = token }, "SASL", received);
    }

    private static void AddAuthId(ServerConnection conn, Id id)
    {
        if (!conn.AuthInfo.Any(a => a.Scheme == id.Scheme && a.IdValue == id.IdValue)) conn.AuthInfo.Add(id);
    }

    // ------------------------------------------------------------------ writes

    private (IJuteRecord? Rsp, int Err, string LastOp) HandleWrite(ServerConnection conn, Session session, RequestHeader h, ReadOnlySpan<byte> body)
    {
        long zxid = ++_lastZxid;
        var hdr = new TxnHeader { ClientId = session.Id, Cxid = h.Xid, Zxid = zxid, Time = WallNow, Type = h.Type };
        string lastOp = h.Type switch
        {
            OpCode.Create or OpCode.Create2 or OpCode.CreateContainer or OpCode.CreateTTL => "CREA",
            OpCode.Delete or OpCode.DeleteContainer => "DELE",
            OpCode.SetData => "SETD",
            OpCode.SetACL => "SETA",
            OpCode.Check => "CHEC",
            OpCode.Multi => "MULT",
            OpCode.Reconfig => "RECO",
            _ => "NA",
        };
        if (h.Type == OpCode.Multi) return (HandleMulti(conn, session, hdr, body), 0, lastOp);

        IJuteRecord txn;
        try
        {
            var r = new JuteReader(body, Config.JuteMaxBuffer);
            txn = Prep(conn, session, h.Type, ref r, zxid, hdr.Time);
        }
        catch (KeeperException e)
        {
            hdr.Type = OpCode.Error;
            txn = new ErrorTxn { Err = e.Code };
        }
        catch (JuteException)
        {
            hdr.Type = OpCode.Error;
            txn = new ErrorTxn { Err = (int)Code.MarshallingError };
        }
        var rc = LogAndApply(hdr, txn);
        if (rc.Err != 0) return (null, rc.Err, lastOp);
        IJuteRecord? rsp = h.Type switch
        {
            OpCode.Create => new CreateResponse { Path = rc.Path },
            OpCode.Create2 or OpCode.CreateTTL or OpCode.CreateContainer => new Create2Response { Path = rc.Path, Stat = rc.Stat! },
            OpCode.SetData => new SetDataResponse { Stat = rc.Stat! },
            OpCode.SetACL => new SetACLResponse { Stat = rc.Stat! },
            OpCode.Check => new SetDataResponse { Stat = rc.Stat ?? new Stat() },
            _ => null,
        };
        return (rsp, 0, lastOp);
    }

    /// <summary>Upstream pRequest2Txn: validates one write against the tree and returns its txn
    /// (standalone: the tree itself; a quorum leader: the prepared tree, which has the proposals
    /// in flight, see KeeperServer.LeaderPrep). Checks run in upstream's order so the same error wins.</summary>
    private IJuteRecord Prep(ServerConnection conn, Session session, int type, ref JuteReader r, long zxid, long time)
    {
        switch (type)
        {
            case OpCode.Create:
            case OpCode.Create2:
            case OpCode.CreateContainer:
            {
                var req = CreateRequest.Read(ref r);
                return PrepCreate(conn, session, type, req.Path, req.Data, req.Acl, req.Flags, -1);
            }
            case OpCode.CreateTTL:
            {
                var req = CreateTTLRequest.Read(ref r);
                return PrepCreate(conn, session, type, req.Path, req.Data, req.Acl, req.Flags, req.Ttl);
            }
            case OpCode.Delete:
            {
                var req = DeleteRequest.Read(ref r);
                string path = req.Path ?? "";
                string parentPath = ParentForDelete(path);
                var parent = PrepTree.GetNode(parentPath) ?? throw new KeeperException(Code.NoNode, parentPath);
                _auth.Check(PrepTree.Acls.Get(parent.Acl), Perms.Delete, conn.AuthInfo, path);
                var node = PrepTree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                CheckAndIncVersion(node.Version, req.Version, path);
                if (node.Children.Count > 0) throw new KeeperException(Code.NotEmpty, path);
                return new DeleteTxn { Path = path };
            }
            case OpCode.DeleteContainer:
            {
                // only containers and TTL nodes qualify; a plain node answers BadVersion as upstream does
                string path = DeleteContainerRequest.Read(ref r).Path ?? "";
                string parentPath = ParentForDelete(path);
                var node = PrepTree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                if (node.Children.Count > 0) throw new KeeperException(Code.NotEmpty, path);
                if (!EphemeralOwner.IsContainer(node.EphemeralOwner) && !EphemeralOwner.IsTtl(node.EphemeralOwner, Config.ExtendedTypesEnabled))
                    throw new KeeperException(Code.BadVersion, path);
                _ = PrepTree.GetNode(parentPath) ?? throw new KeeperException(Code.NoNode, parentPath);
                return new DeleteTxn { Path = path };
            }
            case OpCode.SetData:
            {
                var req = SetDataRequest.Read(ref r);
                string path = ValidatePath(req.Path);
                var node = PrepTree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                _auth.Check(PrepTree.Acls.Get(node.Acl), Perms.Write, conn.AuthInfo, path);
                if (Config.EnforceQuota) PrepTree.CheckQuota(path, (req.Data?.Length ?? 0) - (node.Data?.Length ?? 0), 0);
                int v = CheckAndIncVersion(node.Version, req.Version, path);
                return new SetDataTxn { Path = path, Data = req.Data, Version = v };
            }
            case OpCode.SetACL:
            {
                var req = SetACLRequest.Read(ref r);
                string path = ValidatePath(req.Path);
                var acl = _auth.FixupAcl(path, conn.AuthInfo, req.Acl);
                var node = PrepTree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                _auth.Check(PrepTree.Acls.Get(node.Acl), Perms.Admin, conn.AuthInfo, path);
                int v = CheckAndIncVersion(node.Aversion, req.Version, path);
                return new SetACLTxn { Path = path, Acl = acl, Version = v };
            }
            case OpCode.Check:
            {
                var req = CheckVersionRequest.Read(ref r);
                string path = ValidatePath(req.Path);
                var node = PrepTree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                _auth.Check(PrepTree.Acls.Get(node.Acl), Perms.Read, conn.AuthInfo, path);
                return new CheckVersionTxn { Path = path, Version = CheckAndIncVersion(node.Version, req.Version, path) };
            }
            case OpCode.Reconfig:
                ReconfigRequest.Read(ref r);
                // standalone with reconfigEnabled=false (upstream's default): ReconfigDisabled
                throw new KeeperException(Config.ReconfigEnabled ? Code.Unimplemented : Code.ReconfigDisabled);
            default:
                throw new KeeperException(Code.MarshallingError);
        }
    }

    private IJuteRecord PrepCreate(ServerConnection conn, Session session, int type, string? path, byte[]? data, List<ACL>? acl, int flags, long ttl)
    {
        if (!CreateMode.IsValid(flags)) throw new KeeperException(Code.BadArguments, path);
        // upstream validateCreateRequest
        if (CreateMode.IsTtl(flags) && !Config.ExtendedTypesEnabled) throw new KeeperException(Code.Unimplemented, path);
        if (CreateMode.IsTtl(flags))
        {
            if (ttl <= 0 || ttl > EphemeralOwner.MaxTtl) throw new KeeperException(Code.BadArguments, path);
        }
        else if (ttl >= 0) throw new KeeperException(Code.BadArguments, path);
        if (path is null || path.LastIndexOf('/') < 0 || path.Contains('\0')) throw new KeeperException(Code.BadArguments, path);
        string parentPath = PathUtils.Parent(path);
        if (path.LastIndexOf('/') == 0) parentPath = "/";
        var listAcl = _auth.FixupAcl(path, conn.AuthInfo, acl);
        var parent = PrepTree.GetNode(parentPath) ?? throw new KeeperException(Code.NoNode, parentPath);
        _auth.Check(PrepTree.Acls.Get(parent.Acl), Perms.Create, conn.AuthInfo, path);
        int parentCVersion = parent.Cversion;
        if (CreateMode.IsSequential(flags)) path += parentCVersion.ToString("D10", System.Globalization.CultureInfo.InvariantCulture);
        ValidatePath(path);
        if (PrepTree.GetNode(path) is not null) throw new KeeperException(Code.NodeExists, path);
        if (EphemeralOwner.IsSessionOwner(parent.EphemeralOwner, Config.ExtendedTypesEnabled))
            throw new KeeperException(Code.NoChildrenForEphemerals, path);
        int newCversion = parent.Cversion + 1;
        if (Config.EnforceQuota) PrepTree.CheckQuota(path, data?.Length ?? 0, 1);
        if (type == OpCode.CreateContainer) return new CreateContainerTxn { Path = path, Data = data, Acl = listAcl, ParentCVersion = newCversion };
        if (type == OpCode.CreateTTL) return new CreateTTLTxn { Path = path, Data = data, Acl = listAcl, ParentCVersion = newCversion, Ttl = ttl };
        return new CreateTxn { Path = path, Data = data, Acl = listAcl, Ephemeral = CreateMode.IsEphemeral(flags), ParentCVersion = newCversion };
    }

    private static string ValidatePath(string? path)
    {
        if (!PathUtils.IsValid(path)) throw new KeeperException(Code.BadArguments, path);
        return path!;
    }

    private static bool IsSpecialPath(string path) => path is "/" or DataTree.ZookeeperPath or DataTree.QuotaPath or DataTree.ConfigPath;

    private static string ParentForDelete(string path)
    {
        int slash = path.LastIndexOf('/');
        if (slash < 0 || path.Contains('\0') || IsSpecialPath(path)) throw new KeeperException(Code.BadArguments, path);
        return slash == 0 ? "/" : path.Substring(0, slash);
    }

    /// <summary>Upstream checkAndIncVersion, including ZOOKEEPER-4743: the version after
    /// Integer.MIN_VALUE..-2 skips -1 (which would mean "any version").</summary>
    private static int CheckAndIncVersion(int current, int expected, string path)
    {
        if (expected != -1 && expected != current) throw new KeeperException(Code.BadVersion, path);
        int next = unchecked(current + 1);
        return next == -1 ? 0 : next;
    }

    /// <summary>multi: ops are validated and applied one by one against the tree (each sees the
    /// ones before it); on the first failure everything applied is rolled back and the whole multi
    /// is logged as a MultiTxn whose ops are errors, as upstream. The reply header is OK; per-op
    /// results carry the outcome.</summary>
    private IJuteRecord HandleMulti(ServerConnection conn, Session session, TxnHeader hdr, ReadOnlySpan<byte> body)
    {
        List<(int Type, IJuteRecord? Req)> ops;
        try
        {
            ops = ReadMultiOps(body, write: true);
        }
        catch (Exception e) when (e is JuteException or KeeperException)
        {
            hdr.Type = OpCode.Error;
            LogAndApply(hdr, new ErrorTxn { Err = (int)Code.MarshallingError });
            throw new KeeperException(Code.MarshallingError);
        }
        var txns = new List<Txn>();
        int triggersBefore = Tree.Triggers.Count;
        Tree.BeginMulti();
        var results = new List<ProcessTxnResult>();
        bool failed = false;
        foreach (var (type, req) in ops)
        {
            if (failed)
            {
                txns.Add(new Txn { Type = OpCode.Error, Data = new ErrorTxn { Err = (int)Code.RuntimeInconsistency }.ToBytes() });
                continue;
            }
            try
            {
                var bytes = req!.ToBytes();
                var r = new JuteReader(bytes, int.MaxValue);
                var txn = Prep(conn, session, type, ref r, hdr.Zxid, hdr.Time);
                var subHdr = new TxnHeader { ClientId = hdr.ClientId, Cxid = hdr.Cxid, Zxid = hdr.Zxid, Time = hdr.Time, Type = type };
                var rc = Tree.ProcessTxn(subHdr, txn);
                if (rc.Err != 0) throw new KeeperException(rc.Err);
                results.Add(rc);
                txns.Add(new Txn { Type = type, Data = txn.ToBytes() });
            }
            catch (KeeperException e)
            {
                failed = true;
                txns.Add(new Txn { Type = OpCode.Error, Data = new ErrorTxn { Err = e.Code }.ToBytes() });
            }
        }
        var multi = new MultiTxn { Txns = txns };
        ProcessTxnResult final;
        if (failed)
        {
            Tree.RollbackMulti(triggersBefore);
            final = Tree.ProcessTxn(hdr, multi); // applies nothing; yields OK / code / RuntimeInconsistency
            AppendToLog(hdr, multi);
        }
        else
        {
            Tree.CommitMulti();
            if (hdr.Zxid > Tree.LastProcessedZxid) Tree.LastProcessedZxid = hdr.Zxid;
            Tree.RecordDigest(hdr.Zxid);
            AppendToLog(hdr, multi);
            final = new ProcessTxnResult { Type = OpCode.Multi, MultiResult = results };
        }
        DispatchTriggers();
        return new MultiResponse(final.MultiResult!.Select(rc => MultiResponse.Result.From(rc)).ToList());
    }

    private List<(int Type, IJuteRecord? Req)> ReadMultiOps(ReadOnlySpan<byte> body, bool write)
    {
        var r = new JuteReader(body, Config.JuteMaxBuffer);
        var ops = new List<(int, IJuteRecord?)>();
        var mh = MultiHeader.Read(ref r);
        while (!mh.Done)
        {
            IJuteRecord rec = mh.Type switch
            {
                OpCode.Create or OpCode.Create2 or OpCode.CreateContainer when write => CreateRequest.Read(ref r),
                OpCode.CreateTTL when write => CreateTTLRequest.Read(ref r),
                OpCode.Delete when write => DeleteRequest.Read(ref r),
                OpCode.SetData when write => SetDataRequest.Read(ref r),
                OpCode.Check when write => CheckVersionRequest.Read(ref r),
                OpCode.GetChildren when !write => GetChildrenRequest.Read(ref r),
                OpCode.GetData when !write => GetDataRequest.Read(ref r),
                _ => throw new JuteException($"invalid op type {mh.Type} in multi"),
            };
            ops.Add((mh.Type, rec));
            if (ops.Count > 100_000) throw new JuteException("too many ops in multi");
            mh = MultiHeader.Read(ref r);
        }
        return ops;
    }

    // ------------------------------------------------------------------ reads

    private (IJuteRecord? Rsp, string LastOp) HandleRead(ServerConnection conn, RequestHeader h, ReadOnlySpan<byte> body)
    {
        var r = new JuteReader(body, Config.JuteMaxBuffer);
        switch (h.Type)
        {
            case OpCode.Exists:
            {
                var req = ExistsRequest.Read(ref r);
                string path = req.Path ?? "";
                if (path.Contains('\0')) throw new KeeperException(Code.BadArguments, path);
                var n = Tree.GetNode(path);
                if (n is not null) _auth.Check(Tree.Acls.Get(n.Acl), Perms.Read, conn.AuthInfo, path);
                // upstream statNode registers the watch before failing with NoNode: an exists
                // watch on a missing node fires on its creation
                if (req.Watch) Tree.DataWatches.Add(path, conn, WatchMode.Standard);
                if (n is null) throw new KeeperException(Code.NoNode, path);
                return (new ExistsResponse { Stat = n.ToStat(Config.ExtendedTypesEnabled) }, "EXIS");
            }
            case OpCode.GetData:
                return (GetData(conn, GetDataRequest.Read(ref r)), "GETD");
            case OpCode.GetChildren:
            {
                var req = GetChildrenRequest.Read(ref r);
                var (children, _) = GetChildren(conn, req.Path, req.Watch);
                return (new GetChildrenResponse { Children = children }, "GETC");
            }
            case OpCode.GetChildren2:
            {
                var req = GetChildren2Request.Read(ref r);
                var (children, stat) = GetChildren(conn, req.Path, req.Watch);
                return (new GetChildren2Response { Children = children, Stat = stat }, "GETC");
            }
            case OpCode.GetACL:
            {
                var req = GetACLRequest.Read(ref r);
                string path = req.Path ?? "";
                var n = Tree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                var acl = Tree.Acls.Get(n.Acl);
                _auth.Check(acl, Perms.Read | Perms.Admin, conn.AuthInfo, path);
                List<ACL> shown;
                try
                {
                    _auth.Check(acl, Perms.Admin, conn.AuthInfo, path);
                    shown = acl;
                }
                catch (KeeperException)
                {
                    // without ADMIN, digest hashes are masked (upstream ZOOKEEPER-1392)
                    shown = acl.Select(a => a.Id.Scheme == "digest"
                        ? new ACL { Perms = a.Perms, Id = new Id { Scheme = "digest", IdValue = MaskDigest(a.Id.IdValue) } }
                        : a).ToList();
                }
                return (new GetACLResponse { Acl = shown, Stat = n.ToStat(Config.ExtendedTypesEnabled) }, "GETA");
            }
            case OpCode.GetAllChildrenNumber:
            {
                var req = GetAllChildrenNumberRequest.Read(ref r);
                string path = req.Path ?? "";
                var n = Tree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
                _auth.Check(Tree.Acls.Get(n.Acl), Perms.Read, conn.AuthInfo, path);
                return (new GetAllChildrenNumberResponse { TotalNumber = Tree.CountDescendants(path) }, "GETACN");
            }
            case OpCode.Sync:
            {
                var req = SyncRequest.Read(ref r);
                return (new SyncResponse { Path = req.Path }, "SYNC");
            }
            case OpCode.SetWatches:
            {
                var req = SetWatches.Read(ref r);
                ApplySetWatches(conn, req.RelativeZxid, req.DataWatches, req.ExistWatches, req.ChildWatches, null, null);
                return (null, "SETW");
            }
            case OpCode.SetWatches2:
            {
                var req = SetWatches2.Read(ref r);
                ApplySetWatches(conn, req.RelativeZxid, req.DataWatches, req.ExistWatches, req.ChildWatches, req.PersistentWatches, req.PersistentRecursiveWatches);
                return (null, "STW2");
            }
            case OpCode.AddWatch:
            {
                var req = AddWatchRequest.Read(ref r);
                string path = req.Path ?? "";
                var mode = req.Mode switch
                {
                    0 => WatchMode.Persistent,
                    1 => WatchMode.PersistentRecursive,
                    // upstream's AddWatchMode.fromZooDef throws, which surfaces as MarshallingError
                    _ => throw new KeeperException(Code.MarshallingError, path),
                };
                Tree.DataWatches.Add(path, conn, mode);
                Tree.ChildWatches.Add(path, conn, mode);
                return (new ErrorResponse { Err = 0 }, "ADDW");
            }
            case OpCode.CheckWatches:
            case OpCode.RemoveWatches:
            {
                string? path;
                int wtype;
                if (h.Type == OpCode.CheckWatches) { var q = CheckWatchesRequest.Read(ref r); path = q.Path; wtype = q.Type; }
                else { var q = RemoveWatchesRequest.Read(ref r); path = q.Path; wtype = q.Type; }
                path ??= "";
                bool remove = h.Type == OpCode.RemoveWatches;
                bool found = wtype switch
                {
                    WatcherType.Children => Op(Tree.ChildWatches, WatchMode.Standard),
                    WatcherType.Data => Op(Tree.DataWatches, WatchMode.Standard),
                    WatcherType.Any => Op(Tree.ChildWatches, null) | Op(Tree.DataWatches, null),
                    WatcherType.Persistent => Op(Tree.ChildWatches, WatchMode.Persistent) | Op(Tree.DataWatches, WatchMode.Persistent),
                    WatcherType.PersistentRecursive => Op(Tree.ChildWatches, WatchMode.PersistentRecursive) | Op(Tree.DataWatches, WatchMode.PersistentRecursive),
                    _ => throw new KeeperException(Code.BadArguments, path),
                };
                if (!found) throw new KeeperException(Code.NoWatcher, path);
                return (null, remove ? "REMW" : "CHKW");

                bool Op(WatchManager m, WatchMode? mode) => remove ? m.Remove(path!, conn, mode) : m.Contains(path!, conn, mode);
            }
            case OpCode.WhoAmI:
                return (new WhoAmIResponse { ClientInfo = Auth.ClientInfos(conn.AuthInfo) }, "HOMI");
            case OpCode.GetEphemerals:
            {
                var req = GetEphemeralsRequest.Read(ref r);
                string prefix = req.PrefixPath?.Trim() ?? "";
                var all = Tree.GetEphemerals(conn.SessionId);
                var list = prefix.Length == 0 || prefix == "/" ? all.ToList() : all.Where(p => p.StartsWith(req.PrefixPath!, StringComparison.Ordinal)).ToList();
                return (new GetEphemeralsResponse { Ephemerals = list }, "GETE");
            }
            case OpCode.MultiRead:
            {
                var ops = ReadMultiOps(body, write: false);
                var results = new List<MultiResponse.Result>();
                foreach (var (type, req) in ops)
                {
                    try
                    {
                        if (type == OpCode.GetChildren)
                        {
                            var q = (GetChildrenRequest)req!;
                            var (children, _) = GetChildren(conn, q.Path, q.Watch);
                            results.Add(new MultiResponse.Result(OpCode.GetChildren, 0, new GetChildrenResponse { Children = children }));
                        }
                        else
                        {
                            results.Add(new MultiResponse.Result(OpCode.GetData, 0, GetData(conn, (GetDataRequest)req!)));
                        }
                    }
                    catch (KeeperException e)
                    {
                        results.Add(new MultiResponse.Result(OpCode.Error, e.Code, new ErrorResponse { Err = e.Code }));
                    }
                }
                return (new MultiResponse(results), "MLTR");
            }
            default:
                throw new KeeperException(Code.Unimplemented);
        }
    }

    private static string? MaskDigest(string? id)
    {
        if (id is null) return null;
        int colon = id.IndexOf(':');
        return colon < 0 ? id : id.Substring(0, colon) + ":x";
    }

    private GetDataResponse GetData(ServerConnection conn, GetDataRequest req)
    {
        string path = req.Path ?? "";
        var n = Tree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
        _auth.Check(Tree.Acls.Get(n.Acl), Perms.Read, conn.AuthInfo, path);
        if (req.Watch) Tree.DataWatches.Add(path, conn, WatchMode.Standard);
        return new GetDataResponse { Data = n.Data, Stat = n.ToStat(Config.ExtendedTypesEnabled) };
    }

    private (List<string> Children, Stat Stat) GetChildren(ServerConnection conn, string? p, bool watch)
    {
        string path = p ?? "";
        var n = Tree.GetNode(path) ?? throw new KeeperException(Code.NoNode, path);
        _auth.Check(Tree.Acls.Get(n.Acl), Perms.Read, conn.AuthInfo, path);
        if (watch) Tree.ChildWatches.Add(path, conn, WatchMode.Standard);
        return (n.Children.ToList(), n.ToStat(Config.ExtendedTypesEnabled));
    }

    /// <summary>Upstream DataTree.setWatches: a watch whose event was missed while disconnected
    /// (relative to the client's last zxid) fires at once instead of being registered.</summary>
    private void ApplySetWatches(ServerConnection conn, long relativeZxid, List<string>? data, List<string>? exist, List<string>? child, List<string>? persistent, List<string>? recursive)
    {
        long zxid = Tree.LastProcessedZxid;
        // a null string inside a jute vector is legal on the wire; there is nothing to watch for it
        data = data?.Where(p => p is not null).ToList();
        exist = exist?.Where(p => p is not null).ToList();
        child = child?.Where(p => p is not null).ToList();
        persistent = persistent?.Where(p => p is not null).ToList();
        recursive = recursive?.Where(p => p is not null).ToList();
        foreach (var p in data ?? new())
        {
            var n = Tree.GetNode(p);
            if (n is null) conn.Process(EventType.NodeDeleted, p, zxid);
            else if (n.Mzxid > relativeZxid) conn.Process(EventType.NodeDataChanged, p, zxid);
            else Tree.DataWatches.Add(p, conn, WatchMode.Standard);
        }
        foreach (var p in exist ?? new())
        {
            if (Tree.GetNode(p) is not null) conn.Process(EventType.NodeCreated, p, zxid);
            else Tree.DataWatches.Add(p, conn, WatchMode.Standard);
        }
        foreach (var p in child ?? new())
        {
            var n = Tree.GetNode(p);
            if (n is null) conn.Process(EventType.NodeDeleted, p, zxid);
            else if (n.Pzxid > relativeZxid) conn.Process(EventType.NodeChildrenChanged, p, zxid);
            else Tree.ChildWatches.Add(p, conn, WatchMode.Standard);
        }
        foreach (var p in persistent ?? new())
        {
            Tree.DataWatches.Add(p, conn, WatchMode.Persistent);
            Tree.ChildWatches.Add(p, conn, WatchMode.Persistent);
        }
        foreach (var p in recursive ?? new())
        {
            Tree.DataWatches.Add(p, conn, WatchMode.PersistentRecursive);
            Tree.ChildWatches.Add(p, conn, WatchMode.PersistentRecursive);
        }
    }
}

/// <summary>The answer to multi / multiRead: each result preceded by a MultiHeader(type, false,
/// err), closed by MultiHeader(-1, true, -1) (upstream MultiResponse.serialize).</summary>
public sealed class MultiResponse : IJuteRecord
{
    public sealed record Result(int Type, int Err, IJuteRecord? Body)
    {
        public static Result From(ProcessTxnResult rc) => rc.Type switch
        {
            OpCode.Create => new Result(OpCode.Create, 0, new CreateResponse { Path = rc.Path }),
            OpCode.Create2 or OpCode.CreateTTL or OpCode.CreateContainer => new Result(rc.Type, 0, new Create2Response { Path = rc.Path, Stat = rc.Stat! }),
            OpCode.SetData => new Result(OpCode.SetData, 0, new SetDataResponse { Stat = rc.Stat! }),
            OpCode.Delete or OpCode.DeleteContainer => new Result(OpCode.Delete, 0, null),
            OpCode.Check => new Result(OpCode.Check, 0, null),
            _ => new Result(OpCode.Error, rc.Err, new ErrorResponse { Err = rc.Err }),
        };
    }

    public MultiResponse(List<Result> results) { Results = results; }
    public List<Result> Results { get; }

    public void Write(ref JuteWriter writer)
    {
        foreach (var r in Results)
        {
            new MultiHeader { Type = r.Type, Done = false, Err = r.Type == OpCode.Error ? r.Err : 0 }.Write(ref writer);
            r.Body?.Write(ref writer);
        }
        new MultiHeader { Type = -1, Done = true, Err = -1 }.Write(ref writer);
    }

    public int Size() => Results.Sum(r => 9 + (r.Body?.Size() ?? 0)) + 9;
}
