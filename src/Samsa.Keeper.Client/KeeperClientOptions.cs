namespace Samsa.Keeper.Client;

public sealed class KeeperClientOptions
{
    /// <summary>The session timeout asked for; the server clamps it to its [min, max] range and
    /// <see cref="KeeperClient.SessionTimeout"/> reports the negotiated value.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Receives every state change and the events of watches set with watch: true.</summary>
    public Watcher? DefaultWatcher { get; set; }

    /// <summary>Set both to resume an existing session (upstream's ZooKeeper(connectString,
    /// sessionTimeout, watcher, sessionId, sessionPasswd) constructor).</summary>
    public long SessionId { get; set; }
    public byte[]? SessionPassword { get; set; }

    /// <summary>jute.maxbuffer for frames received: a frame whose length is negative or not below
    /// this is a protocol error and drops the connection (upstream ClientCnxnSocket.readLength).</summary>
    public int MaxBufferBytes { get; set; } = 0xfffff;

    /// <summary>How many requests may wait for their answers at once; further calls wait for a
    /// slot, so a fast producer of requests cannot grow the client's memory without bound.</summary>
    public int MaxOutstandingRequests { get; set; } = 10_000;

    /// <summary>Time allowed to open a TCP connection to one server and complete the session
    /// handshake. Default: the session timeout divided by the number of servers, as upstream.</summary>
    public TimeSpan? ConnectTimeout { get; set; }

    /// <summary>Upstream shuffles the server list once so clients spread over an ensemble.</summary>
    public bool ShuffleServers { get; set; } = true;

    /// <summary>Upstream's zookeeper.disableAutoWatchReset: when true, watches are not re-registered
    /// after a reconnect.</summary>
    public bool DisableAutoWatchReset { get; set; }

    /// <summary>TLS to a secureClientPort (upstream zookeeper.client.secure=true with Netty); null = plain TCP.</summary>
    public KeeperClientTls? Tls { get; set; }

    /// <summary>SASL DIGEST-MD5 after each connect (upstream zookeeper.sasl.client with a JAAS Client section); null = none.</summary>
    public KeeperClientSasl? Sasl { get; set; }
}
