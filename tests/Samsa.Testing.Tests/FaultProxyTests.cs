using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Samsa.Testing.Tests;

/// <summary>The fault proxy must keep serving after clients that connect and hang up at once (a
/// Keeper client closing its session does that): an accept loop that stopped there left later
/// connections in the listen backlog unanswered, and a restarted broker timed out waiting for its
/// ZooKeeper session. Cut is for good; bytes back to clients are counted.</summary>
public sealed class FaultProxyTests
{
    [Fact]
    public async Task ServesNewConnectionsAfterClientsThatCloseImmediately()
    {
        var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient c;
                try { c = await echo.AcceptTcpClientAsync(stop.Token); }
                catch (OperationCanceledException) { return; }
                _ = Task.Run(async () =>
                {
                    using (c)
                    {
                        var buf = new byte[64];
                        try
                        {
                            var s = c.GetStream();
                            int n;
                            while ((n = await s.ReadAsync(buf, stop.Token)) > 0) await s.WriteAsync(buf.AsMemory(0, n), stop.Token);
                        }
                        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException) { }
                    }
                });
            }
        });
        await using (var proxy = new FaultProxy(((IPEndPoint)echo.LocalEndpoint).Port))
        {
            for (int i = 0; i < 50; i++)
            {
                using var quick = new TcpClient();
                await quick.ConnectAsync(IPAddress.Loopback, proxy.Port);
                quick.Close();
            }
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, proxy.Port);
            var stream = client.GetStream();
            await stream.WriteAsync("ping"u8.ToArray());
            var got = new byte[4];
            await stream.ReadExactlyAsync(got).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("ping"u8.ToArray(), got);
            Assert.Equal(4, proxy.BytesToClients);
            Assert.Equal(0, proxy.BytesToSources);

            // Cut: the open connection is reset and later ones get nothing through.
            proxy.Cut();
            Assert.True(await ClosedAsync(stream), "the open connection was closed by the cut");
            // A later connection is reset: depending on timing the connect itself fails or the
            // connection is closed once accepted; either way nothing gets through.
            using var late = new TcpClient();
            bool closed;
            try
            {
                await late.ConnectAsync(IPAddress.Loopback, proxy.Port);
                var lateStream = late.GetStream();
                try { await lateStream.WriteAsync("ping"u8.ToArray()); } catch (IOException) { }
                closed = await ClosedAsync(lateStream);
            }
            catch (SocketException)
            {
                closed = true;
            }
            Assert.True(closed, "a connection after the cut was closed");
            Assert.Equal(4, proxy.BytesToClients);
        }
        stop.Cancel();
        echo.Stop();
        await server;
    }

    /// <summary>True when the peer closed or reset the connection within 10 s.</summary>
    private static async Task<bool> ClosedAsync(NetworkStream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }
}
