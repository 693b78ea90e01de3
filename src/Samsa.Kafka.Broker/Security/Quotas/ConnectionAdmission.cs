using System.Collections.Concurrent;
using System.Net;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>The connection handler's calls into <see cref="ConnectionQuotas"/>: count a new
/// connection or refuse it as upstream's Acceptor does, and release its slot when it closes.</summary>
internal static class ConnectionAdmission
{
    private static readonly ConcurrentDictionary<Connection, IPAddress> Counted = new();

    public static async ValueTask OnConnectedAsync(KafkaBroker broker, Connection connection, IPAddress address)
    {
        ConnectionQuotas.Outcome outcome;
        int throttleMs, max;
        try { (outcome, throttleMs, max) = await broker.Quotas.Connections.AcceptAsync(address, connection.Closed); }
        catch (OperationCanceledException) { return; }   // closed while waiting under max.connections
        switch (outcome)
        {
            case ConnectionQuotas.Outcome.Accepted:
                Counted[connection] = address;
                if (connection.IsClosed) OnClosed(broker, connection);
                break;
            case ConnectionQuotas.Outcome.TooManyConnections:
                broker.Log($"Rejected connection from {address}, address already has the configured maximum of {max} connections.");
                connection.Close();
                break;
            case ConnectionQuotas.Outcome.Throttled:
                // Upstream reads nothing from a throttled connection and closes it after the delay.
                try { await Task.Delay(throttleMs, connection.Closed); }
                catch (OperationCanceledException) { }
                connection.Close();
                break;
        }
    }

    public static void OnClosed(KafkaBroker broker, Connection connection)
    {
        if (Counted.TryRemove(connection, out var ip)) broker.Quotas.Connections.Release(ip);
    }

}
