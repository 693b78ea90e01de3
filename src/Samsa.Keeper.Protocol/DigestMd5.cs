using System.Security.Cryptography;
using System.Text;

namespace Samsa.Keeper.Protocol;

/// <summary>A DIGEST-MD5 exchange failed (upstream: javax.security.sasl.SaslException).</summary>
public sealed class SaslAuthenticationException(string message) : Exception(message);

/// <summary>SASL DIGEST-MD5 (RFC 2831) with qop "auth" only, as ZooKeeper uses it: protocol
/// "zookeeper", server name and realm "zk-sasl-md5" (upstream SecurityUtils.createSaslServer /
/// createSaslClient), so digest-uri is "zookeeper/zk-sasl-md5". Interoperates with the JDK's
/// DigestMD5Server/DigestMD5Client (algorithm md5-sess, charset utf-8).</summary>
public static class DigestMd5
{
    public const string Protocol = "zookeeper";
    public const string ServerName = "zk-sasl-md5";
    public const string DigestUri = Protocol + "/" + ServerName;

    /// <summary>Directives of a challenge or response: name=value or name="quoted value", comma
    /// separated (RFC 2831 section 7.1). Repeated directives other than realm are errors.</summary>
    public static Dictionary<string, string> ParseDirectives(ReadOnlySpan<byte> token)
    {
        string s;
        try { s = new UTF8Encoding(false, true).GetString(token); }
        catch (DecoderFallbackException) { throw new SaslAuthenticationException("DIGEST-MD5: token is not UTF-8"); }
        var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && (s[i] == ',' || char.IsWhiteSpace(s[i]))) i++;
            if (i >= s.Length) break;
            int eq = s.IndexOf('=', i);
            if (eq < 0) throw new SaslAuthenticationException("DIGEST-MD5: directive without '=' in token");
            string key = s.Substring(i, eq - i).Trim();
            if (key.Length == 0) throw new SaslAuthenticationException("DIGEST-MD5: empty directive name");
            i = eq + 1;
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            string value;
            if (i < s.Length && s[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < s.Length && s[i] != '"')
                {
                    if (s[i] == '\\' && i + 1 < s.Length) i++;
                    sb.Append(s[i++]);
                }
                if (i >= s.Length) throw new SaslAuthenticationException("DIGEST-MD5: unterminated quoted value of " + key);
                i++;
                value = sb.ToString();
            }
            else
            {
                int end = s.IndexOf(',', i);
                if (end < 0) end = s.Length;
                value = s.Substring(i, end - i).Trim();
                i = end;
            }
            if (!d.TryAdd(key, value) && !key.Equals("realm", StringComparison.OrdinalIgnoreCase))
                throw new SaslAuthenticationException("DIGEST-MD5: duplicate directive " + key);
        }
        return d;
    }

    private static string Quote(string v) => "\"" + v.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    /// <summary>RFC 2831 2.1.2.1: username, realm and password are ISO 8859-1 when every character
    /// fits it, UTF-8 otherwise (charset=utf-8 is always negotiated here).</summary>
    private static byte[] Enc(string s) => s.All(c => c <= 0xFF) ? Encoding.Latin1.GetBytes(s) : Encoding.UTF8.GetBytes(s);

    private static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();

    /// <summary>response-value of RFC 2831 2.1.2.1; <paramref name="a2Prefix"/> is "AUTHENTICATE"
    /// for the client's response and "" for the server's rspauth.</summary>
    public static string ResponseValue(string user, string realm, string password, string nonce, string cnonce, string nc,
        string? authzid, string digestUri, string a2Prefix)
    {
        var secret = MD5.HashData(Concat(Enc(user), ":"u8.ToArray(), Enc(realm), ":"u8.ToArray(), Enc(password)));
        var a1 = Concat(secret, Encoding.UTF8.GetBytes(":" + nonce + ":" + cnonce + (authzid is null ? "" : ":" + authzid)));
        string ha1 = Hex(MD5.HashData(a1));
        string ha2 = Hex(MD5.HashData(Encoding.UTF8.GetBytes(a2Prefix + ":" + digestUri)));
        return Hex(MD5.HashData(Encoding.UTF8.GetBytes(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)));
    }

    private static byte[] Concat(params byte[][] parts)
    {
        var r = new byte[parts.Sum(p => p.Length)];
        int o = 0;
        foreach (var p in parts) { p.CopyTo(r, o); o += p.Length; }
        return r;
    }

    public static string NewNonce() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(30));

    /// <summary>The server side: an empty first token gets the challenge, the digest-response gets
    /// rspauth and completes. <paramref name="password"/> looks a user up (null: unknown user).</summary>
    public sealed class Server(Func<string, string?> password)
    {
        private int _step;
        private string _nonce = "";

        public bool IsComplete { get; private set; }

        /// <summary>The authenticated user (upstream: the authorization ID set by
        /// SaslServerCallbackHandler, which is the authentication ID for digest users).</summary>
        public string? AuthorizationId { get; private set; }

        /// <exception cref="SaslAuthenticationException">The exchange failed.</exception>
        public byte[] EvaluateResponse(ReadOnlySpan<byte> response)
        {
            switch (_step)
            {
                case 0:
                    // JDK DigestMD5Server: "DIGEST-MD5 must not have an initial response"
                    if (response.Length != 0) throw new SaslAuthenticationException("DIGEST-MD5 must not have an initial response");
                    _step = 1;
                    _nonce = NewNonce();
                    return Encoding.UTF8.GetBytes($"realm={Quote(ServerName)},nonce={Quote(_nonce)},qop=\"auth\",charset=utf-8,algorithm=md5-sess");
                case 1:
                    _step = 2;
                    return Verify(response);
                default:
                    throw new SaslAuthenticationException("DIGEST-MD5 authentication already completed");
            }
        }

        private byte[] Verify(ReadOnlySpan<byte> token)
        {
            if (token.Length > 4096) throw new SaslAuthenticationException("DIGEST-MD5: digest response longer than 4096 bytes");
            var d = ParseDirectives(token);
            string Get(string k) => d.TryGetValue(k, out var v) ? v : throw new SaslAuthenticationException($"DIGEST-MD5: digest response format violation. Missing {k}");
            string user = Get("username");
            string nonce = Get("nonce");
            string cnonce = Get("cnonce");
            string nc = Get("nc");
            string response = Get("response");
            string uri = Get("digest-uri");
            string realm = d.TryGetValue("realm", out var r) ? r : "";
            string qop = d.TryGetValue("qop", out var q) ? q : "auth";
            d.TryGetValue("authzid", out var authzid);
            if (nonce != _nonce) throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Mismatched nonce.");
            if (nc != "00000001") throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Nonce count does not match: " + nc);
            if (qop != "auth") throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Invalid QOP: " + qop);
            if (realm.Length > 0 && realm != ServerName) throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Nonexistent realm: " + realm);
            if (!uri.Equals(DigestUri, StringComparison.OrdinalIgnoreCase)) throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Mismatched URI: " + uri + "; expecting: " + DigestUri);
            if (d.TryGetValue("charset", out var cs) && !cs.Equals("utf-8", StringComparison.OrdinalIgnoreCase)) throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Unrecognised charset: " + cs);
            string? pw = password(user) ?? throw new SaslAuthenticationException($"DIGEST-MD5: cannot acquire password for {user} in realm : {realm}");
            string expected = ResponseValue(user, realm, pw, nonce, cnonce, nc, authzid, uri, "AUTHENTICATE");
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(response.ToLowerInvariant())))
                throw new SaslAuthenticationException("DIGEST-MD5: digest response format violation. Mismatched response.");
            IsComplete = true;
            AuthorizationId = user;
            return Encoding.UTF8.GetBytes("rspauth=" + ResponseValue(user, realm, pw, nonce, cnonce, nc, authzid, uri, ""));
        }
    }

    /// <summary>The client side (upstream ZooKeeperSaslClient with the JDK's DigestMD5Client):
    /// starts with an empty token, answers the challenge, checks rspauth.</summary>
    public sealed class Client(string username, string password)
    {
        private int _step;
        private string _expectedRspAuth = "";

        public bool IsComplete { get; private set; }

        /// <summary>The first token (DIGEST-MD5 has no initial response: empty).</summary>
        public byte[] InitialResponse() => Array.Empty<byte>();

        /// <summary>Answers the server's token; null when there is nothing more to send.</summary>
        public byte[]? EvaluateChallenge(ReadOnlySpan<byte> challenge)
        {
            switch (_step)
            {
                case 0:
                {
                    _step = 1;
                    var d = ParseDirectives(challenge);
                    if (!d.TryGetValue("nonce", out var nonce)) throw new SaslAuthenticationException("DIGEST-MD5: server challenge has no nonce");
                    if (d.TryGetValue("qop", out var qop) && !qop.Split(',').Select(x => x.Trim()).Contains("auth"))
                        throw new SaslAuthenticationException("DIGEST-MD5: server offers no qop auth: " + qop);
                    string realm = d.TryGetValue("realm", out var r) ? r : ServerName;
                    string cnonce = NewNonce();
                    const string nc = "00000001";
                    string resp = ResponseValue(username, realm, password, nonce, cnonce, nc, username, DigestUri, "AUTHENTICATE");
                    _expectedRspAuth = ResponseValue(username, realm, password, nonce, cnonce, nc, username, DigestUri, "");
                    return Encoding.UTF8.GetBytes($"charset=utf-8,username={Quote(username)},realm={Quote(realm)},nonce={Quote(nonce)},nc={nc},"
                        + $"cnonce={Quote(cnonce)},digest-uri={Quote(DigestUri)},maxbuf=65536,response={resp},qop=auth,authzid={Quote(username)}");
                }
                case 1:
                {
                    _step = 2;
                    var d = ParseDirectives(challenge);
                    if (!d.TryGetValue("rspauth", out var rsp) || rsp != _expectedRspAuth)
                        throw new SaslAuthenticationException("DIGEST-MD5: server's rspauth does not match (mutual authentication failed)");
                    IsComplete = true;
                    return null;
                }
                default:
                    throw new SaslAuthenticationException("DIGEST-MD5 authentication already completed");
            }
        }
    }
}
