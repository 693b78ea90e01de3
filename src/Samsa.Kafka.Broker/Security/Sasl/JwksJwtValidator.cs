using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Security.Sasl;

/// <summary>
/// Signed JWTs for OAUTHBEARER with keys from a local JWKS file, as upstream's
/// OAuthBearerValidatorCallbackHandler (KIP-768) does with a <c>file:</c>
/// <c>sasl.oauthbearer.jwks.endpoint.url</c>: the token's <c>kid</c> (or the only key) picks an RSA
/// (RS256/384/512, PS256/384/512) or EC (ES256/384/512) key; then <c>exp</c>/<c>iat</c> within
/// <c>sasl.oauthbearer.clock.skew.seconds</c> (default 30), <c>sasl.oauthbearer.expected.audience</c>
/// and <c>sasl.oauthbearer.expected.issuer</c> when set, the principal from
/// <c>sasl.oauthbearer.sub.claim.name</c> (default sub) and scopes from
/// <c>sasl.oauthbearer.scope.claim.name</c> (default scope). Keys are read once at start.
/// Differs: an http(s) JWKS endpoint (fetched and refreshed upstream) is refused at start.
/// </summary>
public sealed class JwksJwtValidator
{
    public const string HandlerClass = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
    public const string HandlerClassOld = "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler";

    private readonly List<(string? Kid, AsymmetricAlgorithm Key)> _keys = [];
    private readonly string _subClaim, _scopeClaim;
    private readonly string[] _audience;
    private readonly string? _issuer;
    private readonly long _skewMs;
    private readonly Func<long> _now;

    /// <param name="setting">Looks a key up with the listener/mechanism prefixes applied.</param>
    public JwksJwtValidator(Func<string, string?> setting, Func<long>? nowMs = null)
    {
        _now = nowMs ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        string url = setting("sasl.oauthbearer.jwks.endpoint.url")
            ?? throw new ConfigValueException($"{HandlerClass} needs sasl.oauthbearer.jwks.endpoint.url (a file: URL of a JWKS)");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !uri.IsFile)
            throw new ConfigValueException($"sasl.oauthbearer.jwks.endpoint.url={url}: Samsa reads only file: JWKS URLs (fetching a JWKS endpoint over http(s) is not implemented)");
        if (!File.Exists(uri.LocalPath)) throw new ConfigValueException($"sasl.oauthbearer.jwks.endpoint.url: {uri.LocalPath} does not exist");
        JsonObject? jwks;
        try { jwks = JsonNode.Parse(File.ReadAllText(uri.LocalPath)) as JsonObject; }
        catch (JsonException e) { throw new ConfigValueException($"sasl.oauthbearer.jwks.endpoint.url: {uri.LocalPath} is not JSON: {e.Message}"); }
        if (jwks?["keys"] is not JsonArray keys) throw new ConfigValueException($"{uri.LocalPath}: not a JWKS (no \"keys\" array)");
        foreach (var k in keys.OfType<JsonObject>())
        {
            string? kid = Str(k, "kid");
            byte[] B(string name) => Jwt.Base64Url(Str(k, name) ?? "") ?? throw new ConfigValueException($"{uri.LocalPath}: key {kid}: bad '{name}'");
            switch (Str(k, "kty"))
            {
                case "RSA":
                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters { Modulus = B("n"), Exponent = B("e") });
                    _keys.Add((kid, rsa));
                    break;
                case "EC":
                    var curve = Str(k, "crv") switch
                    {
                        "P-256" => ECCurve.NamedCurves.nistP256, "P-384" => ECCurve.NamedCurves.nistP384, "P-521" => ECCurve.NamedCurves.nistP521,
                        var c => throw new ConfigValueException($"{uri.LocalPath}: key {kid}: unsupported curve {c}"),
                    };
                    _keys.Add((kid, ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = B("x"), Y = B("y") } })));
                    break;
            }
        }
        if (_keys.Count == 0) throw new ConfigValueException($"{uri.LocalPath}: no RSA or EC keys");
        _subClaim = setting("sasl.oauthbearer.sub.claim.name") ?? "sub";
        _scopeClaim = setting("sasl.oauthbearer.scope.claim.name") ?? "scope";
        _audience = (setting("sasl.oauthbearer.expected.audience") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        _issuer = setting("sasl.oauthbearer.expected.issuer");
        _skewMs = 1000L * (int.TryParse(setting("sasl.oauthbearer.clock.skew.seconds"), NumberStyles.None, CultureInfo.InvariantCulture, out int skew) ? skew : 30);
    }

    private static string? Str(JsonObject o, string name) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public (JwtPrincipal? Token, string? ErrorJson, string? LogDetail) Validate(string token)
    {
        const string invalid = "{\"status\":\"invalid_token\"}";
        var parts = token.Split('.');
        if (parts.Length != 3) return (null, invalid, "not a JWS (3 parts)");
        var header = Jwt.DecodeJson(parts[0]);
        var claims = Jwt.DecodeJson(parts[1]);
        var signature = Jwt.Base64Url(parts[2]);
        if (header is null || claims is null || signature is null) return (null, invalid, "malformed JWS");
        string? alg = Str(header, "alg"), kid = Str(header, "kid");
        var candidates = _keys.Where(k => kid is null || k.Kid is null || k.Kid == kid).ToList();
        if (candidates.Count == 0) return (null, invalid, $"no key with kid {kid}");
        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        bool ok = candidates.Any(k => Verify(alg, k.Key, signed, signature));
        if (!ok) return (null, invalid, $"signature ({alg}) does not verify");
        if (_issuer is { Length: > 0 } && Str(claims, "iss") != _issuer) return (null, invalid, $"issuer is not {_issuer}");
        if (_audience.Length > 0)
        {
            var aud = claims["aud"] switch
            {
                JsonValue v when v.TryGetValue<string>(out var s) => [s],
                JsonArray a => a.OfType<JsonValue>().Select(x => x.TryGetValue<string>(out var s) ? s : "").ToList(),
                _ => new List<string>(),
            };
            if (!aud.Any(_audience.Contains)) return (null, invalid, "audience does not match sasl.oauthbearer.expected.audience");
        }
        return Jwt.CheckClaims(claims, _subClaim, _scopeClaim, [], _skewMs, _now());
    }

    private static bool Verify(string? alg, AsymmetricAlgorithm key, byte[] data, byte[] signature)
    {
        if (alg is not { Length: 5 }) return false;   // RS256 ... ES512; "none" is never accepted here
        HashAlgorithmName? hash = alg[2..] switch { "256" => HashAlgorithmName.SHA256, "384" => HashAlgorithmName.SHA384, "512" => HashAlgorithmName.SHA512, _ => null };
        if (hash is null) return false;
        try
        {
            return (alg![..2], key) switch
            {
                ("RS", RSA rsa) => rsa.VerifyData(data, signature, hash.Value, RSASignaturePadding.Pkcs1),
                ("PS", RSA rsa) => rsa.VerifyData(data, signature, hash.Value, RSASignaturePadding.Pss),
                ("ES", ECDsa ec) => ec.VerifyData(data, signature, hash.Value, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
                _ => false,
            };
        }
        catch (CryptographicException) { return false; }
    }
}
