using System.Globalization;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Net;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>Where a SASL connection is in upstream's SaslServerAuthenticator state machine.</summary>
public enum SaslStage
{
    /// <summary>HANDSHAKE_OR_VERSIONS_REQUEST: ApiVersions or SaslHandshake.</summary>
    HandshakeOrVersions,
    /// <summary>HANDSHAKE_REQUEST: after ApiVersions, only SaslHandshake.</summary>
    Handshake,
    /// <summary>AUTHENTICATE: SaslAuthenticate requests (handshake v1) or raw tokens (handshake v0).</summary>
    Authenticate,
    /// <summary>COMPLETE: authenticated; requests go to the handlers.</summary>
    Complete,
}

/// <summary>The SASL state of one connection (kept in <see cref="ConnectionSession.Sasl"/>).</summary>
public sealed class SaslConnectionState
{
    public SaslStage Stage { get; set; } = SaslStage.HandshakeOrVersions;
    /// <summary>SaslHandshake v0: the tokens that follow are length-prefixed without a Kafka header.</summary>
    public bool RawTokens { get; set; }
    public string? Mechanism { get; set; }
    public ISaslServerMechanism? Server { get; set; }
    /// <summary>The version of the client's last SaslAuthenticate; above 0 means it can re-authenticate (KIP-368).</summary>
    public short AuthenticateVersion { get; set; } = -1;
    /// <summary>When the session expires (Environment.TickCount64 ms); null when it does not (KIP-368).</summary>
    public long? SessionExpiresAt { get; set; }
    public bool Reauthenticating { get; set; }
    /// <summary>Set when the response being sent is the last one (failed authentication).</summary>
    public bool CloseAfterResponse { get; set; }
}

/// <summary>The SASL settings of one listener, resolved from server.properties and the JAAS file.</summary>
public sealed record SaslListenerSettings(string ListenerName, IReadOnlyList<string> Mechanisms,
    IReadOnlyDictionary<string, JaasLoginModule> Jaas, IReadOnlyDictionary<string, long> MaxReauthMs);

/// <summary>
/// SASL on the broker's SASL_PLAINTEXT / SASL_SSL listeners, as upstream's SaslServerAuthenticator
/// and the SASL parts of SocketServer: which requests an unauthenticated connection may send, the
/// v0 (headerless) token exchange, failed-authentication delay and close, session expiry and
/// re-authentication (KIP-152, KIP-368), and the JAAS/config resolution that refuses a broker whose
/// SASL listeners cannot work (GSSAPI, or a mechanism without its JAAS entry).
/// </summary>
public sealed class SaslService
{
    public static readonly IReadOnlyList<string> SupportedMechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

    public const string PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule";
    public const string ScramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule";
    public const string OAuthBearerLoginModule = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
    public const string UnsecuredValidator = "org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredValidatorCallbackHandler";
    private const string UnsecuredValidatorOld = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

    private readonly KafkaBroker _broker;
    private readonly Dictionary<string, SaslListenerSettings> _listeners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JwksJwtValidator> _signedJwt = new(StringComparer.Ordinal);
    private Dictionary<string, List<JaasLoginModule>>? _jaasFile;
    private string? _jaasFilePath;

    public SaslService(KafkaBroker broker)
    {
        _broker = broker;
        Credentials = new ScramCredentialStore(broker);
    }

    public ScramCredentialStore Credentials { get; }

    /// <summary>Tests: the clock of session expiry (ms, monotonic).</summary>
    internal Func<long> Now { get; set; } = () => Environment.TickCount64;

    private BrokerConfig Config => _broker.Config;

    // ---------------------------------------------------------------- start-up

    /// <summary>The security protocol of a listener name (listener.security.protocol.map, else the
    /// name itself when it is a protocol name, as upstream).</summary>
    public static SecurityProtocol? ProtocolOf(BrokerConfig config, string listenerName)
    {
        var map = config.GetString("listener.security.protocol.map") ?? "";
        foreach (var entry in map.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = entry.IndexOf(':');
            if (colon > 0 && string.Equals(entry[..colon], listenerName, StringComparison.OrdinalIgnoreCase))
                return SecurityProtocols.Parse(entry[(colon + 1)..]);
        }
        return SecurityProtocols.Parse(listenerName);
    }

    /// <summary>Resolves every SASL listener's mechanisms and JAAS entries, loads the credentials
    /// file of a single node, and throws <see cref="ConfigValueException"/> (one line) for anything
    /// Samsa cannot honour — as upstream refuses to start on a missing JAAS entry.</summary>
    public void Start()
    {
        _jaasFilePath = Config.GetString(JaasConfig.FileProperty);
        if (_jaasFilePath is { Length: > 0 })
        {
            if (!File.Exists(_jaasFilePath))
                throw new ConfigValueException($"JAAS file {_jaasFilePath} ({JaasConfig.FileProperty}) does not exist");
            try { _jaasFile = JaasConfig.ParseFile(File.ReadAllText(_jaasFilePath)); }
            catch (FormatException e) { throw new ConfigValueException($"JAAS file {_jaasFilePath}: {e.Message}"); }
        }
        foreach (var l in Config.Listeners)
        {
            if (ProtocolOf(Config, l.ListenerName) is not { } p || !p.UsesSasl()) continue;
            _listeners[l.ListenerName] = Resolve(l.ListenerName);
        }
        CheckInterBroker();
        try { Credentials.LoadFile(); }
        catch (InvalidDataException e) { throw new ConfigValueException(e.Message); }
    }

    private string? ListenerKey(string listener, string key) => Config.GetString($"listener.name.{listener.ToLowerInvariant()}.{key}");

    private SaslListenerSettings Resolve(string listener)
    {
        string lower = listener.ToLowerInvariant();
        string enabledText = ListenerKey(listener, "sasl.enabled.mechanisms") ?? Config.GetString("sasl.enabled.mechanisms") ?? "GSSAPI";
        var mechanisms = enabledText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (mechanisms.Count == 0)
            throw new ConfigValueException($"listener {listener}: sasl.enabled.mechanisms is empty; a SASL listener needs at least one mechanism");
        foreach (var m in mechanisms)
            if (!SupportedMechanisms.Contains(m))
                throw new ConfigValueException($"listener {listener}: SASL mechanism {m} in sasl.enabled.mechanisms is not supported by Samsa "
                    + $"({(m == "GSSAPI" ? "Kerberos is not implemented; GSSAPI is upstream's default, so set sasl.enabled.mechanisms" : "unknown mechanism")}; supported: {string.Join(", ", SupportedMechanisms)})");
        var jaas = new Dictionary<string, JaasLoginModule>(StringComparer.Ordinal);
        var reauth = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var m in mechanisms)
        {
            string mech = m.ToLowerInvariant();
            string expectedModule = m switch { "PLAIN" => PlainLoginModule, "OAUTHBEARER" => OAuthBearerLoginModule, _ => ScramLoginModule };
            JaasLoginModule? module = null;
            if (ListenerKey(listener, $"{mech}.sasl.jaas.config") is { } inline)
            {
                List<JaasLoginModule> modules;
                try { modules = JaasConfig.ParseInline(inline); }
                catch (FormatException e) { throw new ConfigValueException($"listener.name.{lower}.{mech}.sasl.jaas.config: {e.Message}"); }
                if (modules.Count != 1)
                    throw new ConfigValueException($"listener.name.{lower}.{mech}.sasl.jaas.config: must contain exactly one login module, found {modules.Count}");
                module = modules[0];
            }
            else if (_jaasFile is not null && (_jaasFile.GetValueOrDefault($"{lower}.KafkaServer") ?? _jaasFile.GetValueOrDefault("KafkaServer")) is { } section)
            {
                module = section.FirstOrDefault(x => x.ClassName == expectedModule);
                if (module is null)
                    throw new ConfigValueException($"listener {listener}: the JAAS section for SASL mechanism {m} in {_jaasFilePath} has no {expectedModule} entry");
            }
            if (module is null)
                throw new ConfigValueException($"listener {listener}: could not find a 'KafkaServer' or '{lower}.KafkaServer' entry in the JAAS configuration for SASL mechanism {m}: "
                    + $"set listener.name.{lower}.{mech}.sasl.jaas.config or give a JAAS file ({JaasConfig.FileProperty})");
            if (module.ClassName != expectedModule)
                throw new ConfigValueException($"listener {listener}: SASL mechanism {m} needs login module {expectedModule}, the JAAS config names {module.ClassName}");
            jaas[m] = module;
            // A custom server callback handler (credential checks) cannot be loaded into .NET.
            string? handler = ListenerKey(listener, $"{mech}.sasl.server.callback.handler.class") ?? Config.GetString("sasl.server.callback.handler.class");
            if (m == "OAUTHBEARER" && handler is JwksJwtValidator.HandlerClass or JwksJwtValidator.HandlerClassOld)
            {
                // Signed JWTs checked against a local JWKS (sasl.oauthbearer.* keys, listener-prefixed first).
                _signedJwt[listener] = new JwksJwtValidator(k => ListenerKey(listener, $"{mech}.{k}") ?? ListenerKey(listener, k) ?? Config.GetString(k));
            }
            else if (handler is { Length: > 0 } && !(m == "OAUTHBEARER" && handler is UnsecuredValidator or UnsecuredValidatorOld))
                throw new ConfigValueException($"listener {listener}: sasl.server.callback.handler.class {handler} for {m} cannot be used by Samsa (Java classes are not loaded)");
            string? reauthText = ListenerKey(listener, $"{mech}.connections.max.reauth.ms") ?? ListenerKey(listener, "connections.max.reauth.ms")
                ?? Config.GetString("connections.max.reauth.ms");
            long reauthMs = 0;
            if (reauthText is { Length: > 0 } && !long.TryParse(reauthText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out reauthMs))
                throw new ConfigValueException($"connections.max.reauth.ms for listener {listener}: '{reauthText}' is not a number");
            reauth[m] = reauthMs;
        }
        return new SaslListenerSettings(listener, mechanisms, jaas, reauth);
    }

    /// <summary>Upstream KafkaConfig validation: a SASL inter-broker protocol needs a supported
    /// sasl.mechanism.inter.broker.protocol that the inter-broker listener enables.</summary>
    private void CheckInterBroker()
    {
        string? ibListener = Config.GetString("inter.broker.listener.name") ?? Config.GetString("security.inter.broker.protocol");
        if (ibListener is null || ProtocolOf(Config, ibListener) is not { } p || !p.UsesSasl()) return;
        string mech = Config.GetString("sasl.mechanism.inter.broker.protocol") ?? "GSSAPI";
        if (!SupportedMechanisms.Contains(mech) || mech == "OAUTHBEARER")
            throw new ConfigValueException($"sasl.mechanism.inter.broker.protocol={mech} is not supported by Samsa's inter-broker client (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)");
        var settings = _listeners.FirstOrDefault(kv => string.Equals(kv.Key, ibListener, StringComparison.OrdinalIgnoreCase)).Value;
        if (settings is not null && !settings.Mechanisms.Contains(mech))
            throw new ConfigValueException($"sasl.mechanism.inter.broker.protocol must be included in sasl.enabled.mechanisms when SASL is used for inter-broker communication ({mech} is not enabled on listener {ibListener})");
    }

    public SaslListenerSettings? SettingsOf(string listener) => _listeners.GetValueOrDefault(listener);

    /// <summary>The JAAS entry the broker's inter-broker client uses (username/password options).</summary>
    public JaasLoginModule? JaasOf(string listener, string mechanism) =>
        _listeners.FirstOrDefault(kv => string.Equals(kv.Key, listener, StringComparison.OrdinalIgnoreCase)).Value?.Jaas.GetValueOrDefault(mechanism);

    // ---------------------------------------------------------------- per connection

    private int PreAuthMaxReceive => Config.GetString("sasl.server.max.receive.size") is { } s
        && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : 524288;

    private int FailedAuthDelayMs => Config.GetString("connection.failed.authentication.delay.ms") is { } s
        && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : 100;

    /// <summary>A new connection on a SASL listener: unauthenticated, and its frames bounded by
    /// sasl.server.max.receive.size until it authenticates (upstream's saslAuthRequestMaxReceiveSize).</summary>
    public void OnConnected(Connection connection, ConnectionSession session)
    {
        session.Sasl = new SaslConnectionState();
        session.Authenticated = false;
        connection.MaxFrameBytes = Math.Min(connection.MaxFrameBytes, PreAuthMaxReceive);
    }

    private void CloseWithLog(Connection connection, string why)
    {
        _broker.Log($"closing connection {connection.RemoteEndPoint}: {why}");
        connection.Close();
    }

    private static string ApiName(short key) =>
        Enum.IsDefined(typeof(ApiKey), key) ? UpperSnake(((ApiKey)key).ToString()) : key.ToString(CultureInfo.InvariantCulture);

    /// <summary>Upstream's ApiKeys names (SASL_HANDSHAKE, not SaslHandshake) for its log lines.</summary>
    private static string UpperSnake(string name)
    {
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(name[i]));
        }
        return sb.ToString();
    }

    /// <summary>
    /// Called for every frame of a SASL listener before it is parsed. Returns true when the frame was
    /// consumed here (a raw v0 token, or a request that closes the connection), false when it goes
    /// to the handlers as usual.
    /// </summary>
    public async ValueTask<bool> InterceptAsync(Connection connection, ConnectionSession session, ReadOnlyMemory<byte> frame)
    {
        if (session.Sasl is not SaslConnectionState st) return false;
        if (st.Stage == SaslStage.Authenticate && st.RawTokens)
        {
            await RawTokenAsync(connection, session, st, frame.ToArray());
            return true;
        }
        if (frame.Length < 4) return false;   // the parser closes it as malformed
        short key = (short)((frame.Span[0] << 8) | frame.Span[1]);
        short version = (short)((frame.Span[2] << 8) | frame.Span[3]);
        if (st.Stage == SaslStage.Complete)
        {
            // KIP-368: a SaslHandshake on an authenticated connection starts re-authentication when
            // the client showed it can (SaslAuthenticate v1+); anything else after the session
            // expired closes the connection (SocketServer "Disconnecting expired channel").
            if (key == (short)ApiKey.SaslHandshake && st.AuthenticateVersion > 0)
            {
                st.Reauthenticating = true;
                st.Stage = SaslStage.Handshake;
                return false;
            }
            if (st.SessionExpiresAt is long expires && Now() >= expires)
            {
                CloseWithLog(connection, $"SASL session of {session.Principal} expired; {ApiName(key)} received instead of re-authentication");
                return true;
            }
            return false;
        }
        switch (st.Stage)
        {
            case SaslStage.HandshakeOrVersions when key == (short)ApiKey.ApiVersions:
                // Upstream moves on to HANDSHAKE_REQUEST once a served ApiVersions was answered.
                if (Handlers.ApiTable.Serves(key, version)) st.Stage = SaslStage.Handshake;
                return false;
            case SaslStage.HandshakeOrVersions or SaslStage.Handshake when key == (short)ApiKey.SaslHandshake:
                return false;
            case SaslStage.HandshakeOrVersions or SaslStage.Handshake when key == (short)ApiKey.SaslAuthenticate:
                // Upstream closes without an answer; the handler answers ILLEGAL_SASL_STATE first, then closes.
                return false;
            case SaslStage.HandshakeOrVersions or SaslStage.Handshake:
                CloseWithLog(connection, $"Unexpected Kafka request of type {ApiName(key)} during SASL handshake.");
                return true;
            case SaslStage.Authenticate when key == (short)ApiKey.SaslAuthenticate:
                return false;
            default:
                CloseWithLog(connection, $"Unexpected Kafka request of type {ApiName(key)} during SASL authentication.");
                return true;
        }
    }

    /// <summary>After a response was queued: close when it was the answer to a failed authentication.</summary>
    public static void AfterResponse(Connection connection, ConnectionSession session)
    {
        if (session.Sasl is SaslConnectionState { CloseAfterResponse: true }) connection.Close();
    }

    // SaslHandshake v0: tokens travel as bare length-prefixed frames; a failure has no error frame,
    // the connection just closes after the delay (upstream's non-header path).
    private async ValueTask RawTokenAsync(Connection connection, ConnectionSession session, SaslConnectionState st, byte[] token)
    {
        var outcome = await EvaluateAsync(connection, session, st, token);
        if (outcome.Error is not null)
        {
            connection.Close();
            return;
        }
        await connection.SendFrameAsync(outcome.Challenge);
    }

    public readonly record struct AuthOutcome(byte[] Challenge, string? Error, long SessionLifetimeMs);

    /// <summary>One token of the exchange: the mechanism's challenge, and on completion the
    /// principal, session lifetime and frame limit; on failure the client's message, after the
    /// failed-authentication delay (KIP-306, not on re-authentication), with one log line.</summary>
    public async ValueTask<AuthOutcome> EvaluateAsync(Connection? connection, ConnectionSession session, SaslConnectionState st, byte[] token)
    {
        var server = st.Server!;
        string? error;
        string detail;
        try
        {
            var challenge = server.Evaluate(token);
            if (!server.IsComplete)
            {
                if (server is OAuthBearerSaslServer { LastRejection: { } why } && challenge.Length > 0 && challenge[0] == (byte)'{')
                    _broker.Log($"OAUTHBEARER token rejected for {connection?.RemoteEndPoint}: {why}");
                return new AuthOutcome(challenge, null, 0);
            }
            // A delegation token authenticates as its owner (upstream: the principal builder takes
            // the token owner and marks the principal tokenAuthenticated).
            var tokenOwner = (server as ScramSaslServer)?.TokenOwner;
            var principal = tokenOwner ?? KafkaPrincipal.User(server.AuthorizationId!);
            if (st.Reauthenticating && principal != session.Principal)
                throw new SaslFailedException($"Cannot change principals during re-authentication from {session.Principal}: {principal}", true);
            long lifetime = SessionLifetime(session, st, server);
            session.Principal = principal;
            session.TokenAuthenticated = tokenOwner is not null;
            session.Authenticated = true;
            st.Stage = SaslStage.Complete;
            st.Reauthenticating = false;
            st.Server = null;
            if (connection is not null) connection.MaxFrameBytes = Config.SocketRequestMaxBytes;
            return new AuthOutcome(challenge, null, lifetime);
        }
        catch (SaslFailedException e)
        {
            error = e.ClientVisible ? e.Message : $"Authentication failed during authentication due to invalid credentials with SASL mechanism {st.Mechanism}";
            detail = e.Message;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or IndexOutOfRangeException or System.Security.Cryptography.CryptographicException)
        {
            // A token a mechanism failed to parse is a failed authentication (upstream: SaslException),
            // never an authenticated connection; the detail goes to the log only.
            error = $"Authentication failed during authentication due to invalid credentials with SASL mechanism {st.Mechanism}";
            detail = $"{e.GetType().Name}: {e.Message}";
        }
        _broker.Log($"Failed authentication with {connection?.RemoteEndPoint} ({detail})");
        st.CloseAfterResponse = true;
        st.Server = null;
        if (!st.Reauthenticating && FailedAuthDelayMs > 0) await Task.Delay(FailedAuthDelayMs);
        return new AuthOutcome([], error, 0);
    }

    // Upstream calcCompletionTimesAndReturnSessionLifetimeMs: the smaller of connections.max.reauth.ms
    // (when above 0) and the credential's remaining lifetime; 0 = the session does not expire.
    private long SessionLifetime(ConnectionSession session, SaslConnectionState st, ISaslServerMechanism server)
    {
        long maxReauth = SettingsOf(session.ListenerName)?.MaxReauthMs.GetValueOrDefault(st.Mechanism!) ?? 0;
        long? credentialLeft = server.CredentialExpiryMs is long exp ? exp - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() : null;
        long lifetime;
        if (credentialLeft is null && maxReauth <= 0) { st.SessionExpiresAt = null; return 0; }
        if (credentialLeft is null) lifetime = maxReauth;
        else if (maxReauth <= 0) lifetime = credentialLeft.Value;
        else lifetime = Math.Min(credentialLeft.Value, maxReauth);
        lifetime = Math.Max(0, lifetime);
        st.SessionExpiresAt = Now() + lifetime;
        return lifetime;
    }

    /// <summary>The server side of a mechanism for a listener (after the handshake accepted it).</summary>
    public ISaslServerMechanism CreateServer(string listener, string mechanism)
    {
        var settings = SettingsOf(listener) ?? throw new InvalidOperationException($"listener {listener} has no SASL settings");
        var jaas = settings.Jaas[mechanism];
        return mechanism switch
        {
            "PLAIN" => new PlainSaslServer(jaas),
            "SCRAM-SHA-256" => new ScramSaslServer(ScramMechanism.Sha256, Credentials.Get, _broker.Tokens),
            "SCRAM-SHA-512" => new ScramSaslServer(ScramMechanism.Sha512, Credentials.Get, _broker.Tokens),
            "OAUTHBEARER" => new OAuthBearerSaslServer(_signedJwt.TryGetValue(listener, out var signed) ? signed.Validate : new UnsecuredJwtValidator(jaas).Validate),
            _ => throw new InvalidOperationException($"mechanism {mechanism} is not supported"),
        };
    }
}
