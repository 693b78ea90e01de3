using System.Buffers;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Broker.Security;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Network;

/// <summary>
/// Turns frames into typed requests and responses into frames. Requests of one connection are
/// handled one at a time, in order (upstream mutes a channel until its response is sent), so
/// responses keep request order without reordering buffers. A request that cannot be parsed, or
/// names an API or version not served, closes the connection as upstream does — except
/// ApiVersions, which answers UNSUPPORTED_VERSION with the served ranges (KIP-511).
/// </summary>
public sealed class KafkaConnectionHandler(KafkaBroker broker, string listenerName = "PLAINTEXT", SecurityProtocol securityProtocol = SecurityProtocol.Plaintext) : IFrameHandler
{
    public ValueTask OnConnectedAsync(Connection connection)
    {
        var address = connection.RemoteEndPoint is System.Net.IPEndPoint ip ? ip.Address : System.Net.IPAddress.None;
        var session = new ConnectionSession(listenerName, securityProtocol, address)
        {
            Authenticated = !securityProtocol.UsesSasl(),
        };
        // SSL listeners: the principal of a verified client certificate (upstream
        // DefaultKafkaPrincipalBuilder); none presented stays ANONYMOUS. SASL_SSL takes SASL's.
        if (securityProtocol == SecurityProtocol.Ssl && connection.RemoteCertificate is { } certificate)
            session.Principal = broker.PrincipalOf(certificate);
        connection.State = session;
        if (securityProtocol.UsesSasl()) broker.Sasl.OnConnected(connection, session);
        return Security.Quotas.ConnectionAdmission.OnConnectedAsync(broker, connection, address);
    }

    private static bool HandledOnEventThread(ReadOnlySpan<byte> frame) =>
        frame.Length >= 2 && System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(frame) is (short)ApiKey.Produce or (short)ApiKey.Fetch;

    internal static ConnectionSession SessionOf(Connection connection) =>
        connection.State as ConnectionSession ?? ConnectionSession.ForTests();

    public ValueTask<bool> OnFirstWordAsync(Connection connection, int firstWord) => ValueTask.FromResult(false);
    public ValueTask OnClosedAsync(Connection connection)
    {
        Security.Quotas.ConnectionAdmission.OnClosed(broker, connection);
        broker.Tap?.Closed(connection);
        return ValueTask.CompletedTask;
    }

    public async ValueTask OnFrameAsync(Connection connection, ReadOnlyMemory<byte> frame)
    {
        var timing = new Telemetry.RequestTiming(System.Diagnostics.Stopwatch.GetTimestamp());   // Telemetry/BrokerMetrics
        var session = SessionOf(connection);
        // `samsa broker` runs socket continuations inline (Samsa.Net.SocketEventThread): Produce and
        // Fetch, which never wait synchronously, are handled on the event thread that read them;
        // every other request (admin operations wait for ZooKeeper, SASL may) moves to the pool.
        if (SocketEventThread.IsCurrent && (session.Sasl is not null || !HandledOnEventThread(frame.Span))) await Task.Yield();
        // SASL listeners: unauthenticated connections may only authenticate (Security/Sasl).
        if (session.Sasl is not null && await broker.Sasl.InterceptAsync(connection, session, frame)) return;
        var (header, request, error) = Parse(frame);
        if (header is null)
        {
            broker.Log($"closing connection {connection.RemoteEndPoint}: {error}");
            connection.Close();
            return;
        }
        // The request tap (Tap/RequestTap), when on: renders the request now, the response once sent.
        var tapped = broker.Tap?.Begin(connection, session, header, request, timing.Received);
        IKafkaMessage? response;
        short responseVersion = header.RequestApiVersion;
        int throttleMs = 0;
        if (request is null)
        {
            // Only ApiVersions gets here: an unsupported version answered in v0 form.
            response = ApiVersionsHandler.UnsupportedVersionResponse();
            responseVersion = 0;
        }
        else
        {
            var entry = ApiTable.Find(header.RequestApiKey)!;
            session.ClientId = header.ClientId;
            var context = new RequestContext { Header = header, Broker = broker, Connection = connection, Cancellation = connection.Closed, Session = session };
            try
            {
                // Quotas (Security/Quotas/RequestThrottle): caps and permits before, records after.
                var pending = Security.Quotas.RequestThrottle.Before(context, request);
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                // Tests' fault injection (IRequestInterceptor) wraps the handler: may delay, answer in
                // its place, or change its answer.
                var handling = broker.RequestInterceptor is { } interceptor
                    ? interceptor.InterceptAsync(header, request, () => entry.Handler(context, request), connection.Closed)
                    : entry.Handler(context, request);
                long handlerTicks = System.Diagnostics.Stopwatch.GetTimestamp() - start;
                timing.HandlerStarted(start, handlerTicks);
                response = await handling;
                timing.HandlerDone();
                throttleMs = Security.Quotas.RequestThrottle.After(context, request, frame.Length, handlerTicks, pending, ref response);
            }
            catch (OperationCanceledException) when (connection.Closed.IsCancellationRequested)
            {
                return; // the client went away while its request waited (long-poll fetch)
            }
            catch (Exception e)
            {
                // A handler bug must not take the broker down; upstream closes the connection on
                // unexpected errors it cannot map to a response. One line, not a stack trace: the
                // request came from a client, and a client must not be able to flood the log.
                broker.Log($"closing connection {connection.RemoteEndPoint}: error handling {(ApiKey)header.RequestApiKey} v{header.RequestApiVersion}: {OneLine(e)}");
                connection.Close();
                return;
            }
        }
        long throttleDecided = System.Diagnostics.Stopwatch.GetTimestamp();
        if (response is null)
        {
            broker.Metrics?.RequestDone(header, request, null, frame.Length, timing, throttleDecided);
            tapped?.Done(null, responseVersion);
            if (throttleMs > 0) await Security.Quotas.RequestThrottle.MuteAsync(connection, throttleMs, throttleDecided);
            return;
        }
        try
        {
            if (broker.DropResponseForTests?.Invoke(header) == true)
            {
                connection.Close();
                return;
            }
            await SendAsync(connection, header, response, responseVersion);
            broker.Metrics?.RequestDone(header, request, response, frame.Length, timing, throttleDecided);
            tapped?.Done(response, responseVersion);
            Security.Sasl.SaslService.AfterResponse(connection, session);
            if (throttleMs > 0) await Security.Quotas.RequestThrottle.MuteAsync(connection, throttleMs, throttleDecided);
        }
        catch (KafkaProtocolException e)
        {
            // A response the schema cannot carry at this version (a handler answered a field the
            // version lacks or a null where it is not nullable): nothing was queued, so close.
            broker.Log($"closing connection {connection.RemoteEndPoint}: cannot write {(ApiKey)header.RequestApiKey} v{responseVersion} response: {e.Message}");
            connection.Close();
        }
        finally
        {
            // Fetch records read as segment ranges hold the segment file open until sent.
            if (response is FetchResponse fetch) FetchResponseFrames.Release(fetch);
        }
    }

    internal static (RequestHeader? Header, IKafkaMessage? Request, string? Error) Parse(ReadOnlyMemory<byte> frame)
    {
        if (frame.Length < 8) return (null, null, "request shorter than a header");
        var span = frame.Span;
        short apiKey = (short)((span[0] << 8) | span[1]);
        short apiVersion = (short)((span[2] << 8) | span[3]);
        bool served = ApiTable.Serves(apiKey, apiVersion);
        if (!served && apiKey != (short)ApiKey.ApiVersions)
            return (null, null, $"unsupported api key {apiKey} version {apiVersion}");
        try
        {
            var reader = new KafkaReader(frame);
            // An ApiVersions request of an unknown version still has a readable v1 prefix
            // (key, version, correlation id, client id), which is all the v0 answer needs.
            short headerVersion = served ? ApiMessages.RequestHeaderVersion(apiKey, apiVersion) : (short)1;
            var header = RequestHeader.Read(ref reader, headerVersion);
            if (!served) return (header, null, null);
            var request = ApiMessages.ReadRequest((ApiKey)apiKey, ref reader, apiVersion);
            return (header, request, null);
        }
        catch (KafkaProtocolException e)
        {
            return (null, null, $"malformed {(ApiKey)apiKey} v{apiVersion} request: {e.Message}");
        }
        catch (Exception e) when (e is ArgumentException or OverflowException or IndexOutOfRangeException or InvalidOperationException or FormatException)
        {
            // Decoders report bad input as KafkaProtocolException (the fuzz targets in
            // tests/Samsa.Fuzz treat anything else as a bug); should one slip through, the client
            // still only gets the close, and the log one line.
            return (null, null, $"malformed {(ApiKey)apiKey} v{apiVersion} request: {OneLine(e)}");
        }
    }

    /// <summary>An exception as one log line: type, message and the method that threw.</summary>
    internal static string OneLine(Exception e)
    {
        string? site = e.StackTrace?.Split('\n', 2)[0].Trim();
        return site is { Length: > 0 } ? $"{e.GetType().Name}: {e.Message} ({site})" : $"{e.GetType().Name}: {e.Message}";
    }

    internal static byte[] Serialize(RequestHeader requestHeader, IKafkaMessage response, short version, out int length)
    {
        var header = new ResponseHeader { CorrelationId = requestHeader.CorrelationId };
        short headerVersion = requestHeader.RequestApiKey == (short)ApiKey.ApiVersions
            ? (short)0 : ApiMessages.ResponseHeaderVersion(requestHeader.RequestApiKey, version);
        int hs = header.Size(headerVersion);
        int bs = response.Size(version);
        length = hs + bs;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var writer = new KafkaWriter(buffer.AsSpan(0, length));
        header.Write(ref writer, headerVersion);
        response.Write(ref writer, version);
        return buffer;
    }

    private async ValueTask SendAsync(Connection connection, RequestHeader header, IKafkaMessage response, short version)
    {
        if (response is FetchResponse fetch && FetchResponseFrames.FileBytes(fetch) is > 0 and long fileBytes)
        {
            var responseHeader = new ResponseHeader { CorrelationId = header.CorrelationId };
            short headerVersion = ApiMessages.ResponseHeaderVersion(header.RequestApiKey, version);
            var parts = FetchResponseFrames.Build(responseHeader, headerVersion, fetch, version, fileBytes, out byte[] inline);
            try
            {
                // One request at a time per connection: the counter's growth is this frame's.
                long before = connection.ZeroCopyFileBytes;
                await connection.SendFrameAsync(parts);
                broker.AddFileRangeBytesSent(connection.ZeroCopyFileBytes - before);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(inline);
            }
            return;
        }
        var buffer = Serialize(header, response, version, out int length);
        try
        {
            await connection.SendFrameAsync(buffer.AsMemory(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
