using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>
/// SASL/OAUTHBEARER (RFC 7628) as upstream's OAuthBearerSaslServer. The client's initial response
/// is the gs2 header, then <c>\x01auth=Bearer TOKEN\x01</c> (and extensions) <c>\x01</c>. The token
/// is checked by a validator; a rejected token is answered with an RFC 7628 JSON error challenge
/// (<c>{"status":"invalid_token"}</c>), the client answers <c>\x01</c>, and the exchange fails with
/// that JSON as the message — the same two steps as upstream.
/// </summary>
public sealed class OAuthBearerSaslServer(Func<string, (JwtPrincipal? Token, string? ErrorJson, string? LogDetail)> validate) : ISaslServerMechanism
{
    private string? _errorJson;

    public string Mechanism => "OAUTHBEARER";
    public bool IsComplete { get; private set; }
    public string? AuthorizationId { get; private set; }
    public long? CredentialExpiryMs { get; private set; }
    /// <summary>The reason of the last rejection, for the broker log.</summary>
    public string? LastRejection { get; private set; }

    public byte[] Evaluate(byte[] response)
    {
        if (response.Length == 1 && response[0] == 0x01 && _errorJson is not null)
            throw new SaslFailedException(_errorJson, true);
        _errorJson = null;
        if (IsComplete) throw new SaslFailedException("Unexpected response after authentication completed", false);
        string text;
        try { text = new UTF8Encoding(false, true).GetString(response); }
        catch (DecoderFallbackException) { throw new SaslFailedException("Invalid OAUTHBEARER client first message", false); }
        // gs2-header "n,[a=authzid]," then kvpairs separated by ^A, ended by ^A^A.
        if (!text.StartsWith("n,", StringComparison.Ordinal)) throw new SaslFailedException("Invalid OAUTHBEARER client first message", false);
        int comma = text.IndexOf(',', 2);
        if (comma < 0 || comma + 1 >= text.Length || text[comma + 1] != '\x01' || !text.EndsWith("\x01\x01", StringComparison.Ordinal))
            throw new SaslFailedException("Invalid OAUTHBEARER client first message", false);
        string authz = text[2..comma];
        string? authzid = null;
        if (authz.Length > 0)
        {
            if (!authz.StartsWith("a=", StringComparison.Ordinal)) throw new SaslFailedException("Invalid OAUTHBEARER client first message", false);
            authzid = ScramMessages.UnescapeName(authz[2..]);
        }
        string? auth = null;
        // "n,,^A^A" has no key/value pairs at all (the separator and the terminator overlap).
        string pairs = comma + 2 <= text.Length - 2 ? text[(comma + 2)..^2] : "";
        foreach (var kv in pairs.Split('\x01'))
        {
            if (kv.Length == 0) continue;
            int eq = kv.IndexOf('=');
            if (eq <= 0) throw new SaslFailedException("Invalid OAUTHBEARER client first message", false);
            if (kv[..eq] == "auth") auth = kv[(eq + 1)..];
            // Other keys are SASL extensions; without an extension validator upstream ignores them.
        }
        const string bearer = "Bearer ";
        if (auth is null || !auth.StartsWith(bearer, StringComparison.OrdinalIgnoreCase))
            throw new SaslFailedException("Invalid OAUTHBEARER client first message: no bearer token", false);
        var (token, error, detail) = validate(auth[bearer.Length..].Trim());
        if (token is null)
        {
            _errorJson = error ?? "{\"status\":\"invalid_token\"}";
            LastRejection = detail;
            return Encoding.UTF8.GetBytes(_errorJson);
        }
        if (authzid is { Length: > 0 } && authzid != token.PrincipalName)
            throw new SaslFailedException($"Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({token.PrincipalName})", true);
        AuthorizationId = token.PrincipalName;
        CredentialExpiryMs = token.ExpiresAtMs;
        IsComplete = true;
        return [];
    }
}

/// <summary>What a validated token says: principal, expiry (Unix ms), scopes.</summary>
public sealed record JwtPrincipal(string PrincipalName, long ExpiresAtMs, IReadOnlyList<string> Scope);

/// <summary>
/// Upstream's OAuthBearerUnsecuredValidatorCallbackHandler (development only): a JWS with
/// <c>alg":"none"</c> and an empty signature, the principal in the claim named by the JAAS option
/// <c>unsecuredValidatorPrincipalClaimName</c> (default <c>sub</c>), a required numeric <c>exp</c>,
/// an optional <c>iat</c>, both within <c>unsecuredValidatorAllowableClockSkewMs</c> (default 0),
/// and the scopes of <c>unsecuredValidatorRequiredScope</c> (comma-separated) present in the
/// claim <c>unsecuredValidatorScopeClaimName</c> (default <c>scope</c>).
/// </summary>
public sealed class UnsecuredJwtValidator(JaasLoginModule jaas, Func<long>? nowMs = null)
{
    private readonly string _principalClaim = jaas.Option("unsecuredValidatorPrincipalClaimName") is { Length: > 0 } p ? p : "sub";
    private readonly string _scopeClaim = jaas.Option("unsecuredValidatorScopeClaimName") is { Length: > 0 } s ? s : "scope";
    private readonly long _skewMs = long.TryParse(jaas.Option("unsecuredValidatorAllowableClockSkewMs"), NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : 0;
    private readonly string[] _requiredScope = (jaas.Option("unsecuredValidatorRequiredScope") ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    private readonly Func<long> _now = nowMs ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    public (JwtPrincipal? Token, string? ErrorJson, string? LogDetail) Validate(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3) return Invalid($"token has {parts.Length} parts, not 3");
        if (parts[2].Length != 0) return Invalid("an unsecured JWS must have an empty signature");
        var header = Jwt.DecodeJson(parts[0]);
        var claims = Jwt.DecodeJson(parts[1]);
        if (header is null || claims is null) return Invalid("header or claims are not base64url JSON objects");
        if (header["alg"] is not JsonValue alg || !alg.TryGetValue<string>(out var algName) || algName != "none")
            return Invalid("unsecured JWS must have alg none");
        return Jwt.CheckClaims(claims, _principalClaim, _scopeClaim, _requiredScope, _skewMs, _now());
    }

    private static (JwtPrincipal?, string?, string?) Invalid(string why) => (null, "{\"status\":\"invalid_token\"}", why);
}

/// <summary>JWT helpers shared by the unsecured and the signed validators.</summary>
public static class Jwt
{
    public static byte[]? Base64Url(string s)
    {
        try
        {
            string b = s.Replace('-', '+').Replace('_', '/');
            b += (b.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => throw new FormatException() };
            return Convert.FromBase64String(b);
        }
        catch (FormatException) { return null; }
    }

    public static JsonObject? DecodeJson(string part)
    {
        var bytes = Base64Url(part);
        if (bytes is null) return null;
        // Strict UTF-8 first: System.Text.Json defers string transcoding, so invalid bytes inside a
        // string would otherwise surface later as InvalidOperationException.
        string text;
        try { text = new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { return null; }
        try { return JsonNode.Parse(text) as JsonObject; }
        catch (JsonException) { return null; }
    }

    private static double? Number(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;

    /// <summary>Upstream OAuthBearerValidationUtils: principal claim, exp, iat, exp after iat, scope.</summary>
    public static (JwtPrincipal?, string?, string?) CheckClaims(JsonObject claims, string principalClaim, string scopeClaim,
        IReadOnlyList<string> requiredScope, long skewMs, long nowMs)
    {
        const string invalid = "{\"status\":\"invalid_token\"}";
        if (claims[principalClaim] is not JsonValue pv || !pv.TryGetValue<string>(out var principal) || principal.Trim().Length == 0)
            return (null, invalid, $"the principal claim '{principalClaim}' is missing or not a non-empty string");
        if (Number(claims["exp"]) is not double exp) return (null, invalid, "the exp claim is missing or not a number");
        long expMs = (long)(exp * 1000);
        if (nowMs - skewMs >= expMs) return (null, invalid, $"the token expired at {expMs} (now {nowMs}, skew {skewMs} ms)");
        if (claims["iat"] is not null)
        {
            if (Number(claims["iat"]) is not double iat) return (null, invalid, "the iat claim is not a number");
            long iatMs = (long)(iat * 1000);
            if (iatMs - skewMs > nowMs) return (null, invalid, $"the token was issued in the future ({iatMs}, now {nowMs})");
            if (expMs <= iatMs) return (null, invalid, "exp is not after iat");
        }
        var scope = new List<string>();
        switch (claims[scopeClaim])
        {
            case JsonValue sv when sv.TryGetValue<string>(out var s):
                scope.AddRange(s.Split(' ', StringSplitOptions.RemoveEmptyEntries));
                break;
            case JsonArray arr:
                foreach (var e in arr) if (e is JsonValue ev && ev.TryGetValue<string>(out var es)) scope.Add(es);
                break;
        }
        var missing = requiredScope.Where(r => !scope.Contains(r)).ToList();
        if (missing.Count > 0)
        {
            var err = new JsonObject { ["status"] = "insufficient_scope", ["scope"] = string.Join(" ", requiredScope) };
            return (null, err.ToJsonString(), $"the token lacks the required scope [{string.Join(", ", missing)}]");
        }
        return (new JwtPrincipal(principal, expMs, scope), null, null);
    }
}
