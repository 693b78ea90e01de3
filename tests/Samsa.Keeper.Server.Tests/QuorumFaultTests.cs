using System.Diagnostics;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Server.Quorum;
using Xunit;
using Xunit.Abstractions;

namespace Samsa.Keeper.Server.Tests;

/// <summary>
/// Faults that tests/ensemble/fault_test.py found in Keeper ensembles, each reduced to a test.
/// </summary>
public sealed class QuorumFaultTests(ITestOutputHelper output)
    : QuorumEnsembleTestBase(output, "keeper-fault-", TimeSpan.FromSeconds(40))
{
    /// <summary>After a failover every client reconnects and resumes its session at some member;
    /// one resuming at the Keeper leader while writes were being proposed froze the leader (the
    /// revalidation took the broadcast lock on the server loop while the proposal pipeline, holding
    /// that lock, waited for the loop).</summary>
    [Fact]
    public async Task Sessions_resume_at_the_leader_while_writes_are_proposed()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        var leader = ks.Single(k => k.Leading);
        var follower = ks.First(k => !k.Leading);
        int leaderPort = leader.ClientEndPoint!.Port;

        // sessions created through a follower, so resuming them at the leader means REVALIDATE there
        var sessions = new List<(long Id, byte[] Pw)>();
        for (int i = 0; i < 4; i++)
        {
            // a raw connect that drops the connection without closing the session
            sessions.Add(await RawConnect(follower.ClientEndPoint!.Port, 0, new byte[16]));
        }

        using var stop = new CancellationTokenSource();
        await using var writer = await Connect(leaderPort);
        long written = 0;
        var load = Task.Run(async () =>
        {
            var pending = new List<Task>();
            while (!stop.IsCancellationRequested)
            {
                for (int i = 0; i < 20; i++)
                    pending.Add(writer.CreateAsync("/w-", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.PersistentSequential));
                await Task.WhenAll(pending);
                Interlocked.Add(ref written, pending.Count);
                pending.Clear();
            }
        });

        var sw = Stopwatch.StartNew();
        int resumed = 0;
        // a few seconds of resumptions, so many land while a proposal waits for its quorum
        while (sw.Elapsed < TimeSpan.FromSeconds(3) || resumed < 40)
        {
            foreach (var (id, pw) in sessions)
            {
                var (got, _) = await RawConnect(leaderPort, id, pw).WaitAsync(TimeSpan.FromSeconds(10));
                Assert.Equal(id, got);
                resumed++;
            }
        }
        stop.Cancel();
        await load.WaitAsync(TimeSpan.FromSeconds(20));
        Log($"figure: {resumed} session resumptions at the leader in {sw.ElapsedMilliseconds} ms beside {written} writes");
        Assert.True(written > 0);
        Assert.Contains("Mode: leader", await FourLetter(leaderPort, "srvr"));
    }

    /// <summary>A session's answers come in the order of its requests (ZooKeeper's FIFO client
    /// order): a read pipelined behind a write on a member answers after the write, and sees it.
    /// A member answered the read at once, before the write's commit: kazoo dropped the connection
    /// ("xids do not match") and the read missed the session's own write.</summary>
    [Fact]
    public async Task A_read_pipelined_behind_a_write_is_answered_after_it_on_every_member()
    {
        var ks = new[] { Keeper(1), Keeper(2), Keeper(3) };
        await Until(() => ks.Count(k => k.Leading) == 1 && ks.Count(k => k.Synced) == 2, "no Keeper leader with two synced followers");
        foreach (var k in ks)
        {
            await using var c = await Connect(k.ClientEndPoint!.Port);
            for (int i = 0; i < 20; i++)
            {
                string path = $"/fifo-{k.MyId}-{i}";
                var create = c.CreateAsync(path, new[] { (byte)i }, Acls.OpenAclUnsafe);
                var read = c.GetDataAsync(path);
                var children = c.GetChildrenAsync("/");
                Assert.Equal(path, await create);
                Assert.Equal(new[] { (byte)i }, (await read).Data);
                Assert.Contains(path.TrimStart('/'), await children);
            }
        }
    }

    /// <summary>ConnectRequest (new or resumed session), the ConnectResponse's session id and
    /// password, then the connection is dropped without closeSession.</summary>
    private static async Task<(long Id, byte[] Pw)> RawConnect(int port, long sessionId, byte[] passwd)
    {
        using var c = new System.Net.Sockets.TcpClient();
        await c.ConnectAsync(System.Net.IPAddress.Loopback, port);
        var s = c.GetStream();
        var body = new Samsa.Keeper.Protocol.Records.ConnectRequest { TimeOut = 30000, SessionId = sessionId, Passwd = passwd }.ToBytes();
        var frame = new byte[4 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        await s.WriteAsync(frame);
        var len = new byte[4];
        await s.ReadExactlyAsync(len);
        var resp = new byte[System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(len)];
        await s.ReadExactlyAsync(resp);
        // protocolVersion, timeOut, sessionId, passwd
        long id = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(resp.AsSpan(8));
        int pwLen = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(resp.AsSpan(16));
        return (id, resp.AsSpan(20, Math.Max(0, pwLen)).ToArray());
    }
}
