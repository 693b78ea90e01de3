using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Samsa.Net.Tests;

/// <summary>A plain blocking-style TCP client speaking 4-byte length framing, independent of Samsa.Net.</summary>
internal sealed class TestClient : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly TcpClient _client;

    private TestClient(TcpClient client)
    {
        _client = client;
        Stream = client.GetStream();
    }

    public NetworkStream Stream { get; }
    public Socket Socket => _client.Client;

    public static async Task<TestClient> ConnectAsync(IPEndPoint endpoint)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await client.ConnectAsync(endpoint.Address, endpoint.Port);
        return new TestClient(client);
    }

    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        byte[] bytes = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, payload.Length);
        payload.CopyTo(bytes.AsSpan(4));
        return bytes;
    }

    public async Task SendFrameAsync(byte[] payload) => await Stream.WriteAsync(Frame(payload));

    public async Task SendRawAsync(byte[] bytes) => await Stream.WriteAsync(bytes);

    public async Task<byte[]> ReadFrameAsync()
    {
        byte[] header = await ReadExactlyAsync(4) ?? throw new EndOfStreamException("connection closed before a frame header");
        int length = BinaryPrimitives.ReadInt32BigEndian(header);
        return await ReadExactlyAsync(length) ?? throw new EndOfStreamException("connection closed inside a frame");
    }

    /// <summary>Reads exactly count bytes, or returns null when the peer closes first.</summary>
    public async Task<byte[]?> ReadExactlyAsync(int count)
    {
        byte[] buffer = new byte[count];
        int filled = 0;
        using var cts = new CancellationTokenSource(Timeout);
        while (filled < count)
        {
            int n = await Stream.ReadAsync(buffer.AsMemory(filled), cts.Token);
            if (n == 0)
            {
                return null;
            }
            filled += n;
        }
        return buffer;
    }

    /// <summary>True when the peer closed the connection (EOF or reset) within the timeout.</summary>
    public async Task<bool> WaitForCloseAsync()
    {
        byte[] sink = new byte[4096];
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            while (true)
            {
                int n = await Stream.ReadAsync(sink, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _client.Dispose();
}
