using System.Net;
using System.Security.Cryptography;
using System.Text;
using Samsa.Keeper.Protocol;
using Samsa.Keeper.Protocol.Records;

namespace Samsa.Keeper.Server;

/// <summary>The authentication schemes upstream registers by default ("digest", "ip") plus the
/// "super" identity granted by zookeeper.DigestAuthenticationProvider.superDigest, and the
/// ACL check of ZooKeeperServer.checkACL and PrepRequestProcessor.fixupACL.</summary>
public sealed class Auth
{
    public string? SuperDigest { get; init; }
    public bool SkipAcl { get; init; }

    /// <summary>Schemes with a registered provider (upstream ProviderRegistry): ACL entries of
    /// other schemes are InvalidAcl and never match.</summary>
    public HashSet<string> Schemes { get; init; } = new(StringComparer.Ordinal) { "ip", "digest" };

    /// <summary>zookeeper.X509AuthenticationProvider.superUser: this certificate DN matches every x509 ACL.</summary>
    public string? X509SuperUser { get; init; }

    /// <summary>Upstream DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:password)).</summary>
    public static string GenerateDigest(string idPassword)
    {
        int colon = idPassword.IndexOf(':');
        string user = colon < 0 ? idPassword : idPassword.Substring(0, colon);
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes(idPassword));
        return user + ":" + Convert.ToBase64String(hash);
    }

    /// <summary>Handles an AuthPacket. Returns the ids to add, or null for AuthFailed.</summary>
    public List<Id>? Authenticate(string? scheme, byte[]? auth, EndPoint? remote)
    {
        switch (scheme)
        {
            case "digest":
            {
                string id = Encoding.UTF8.GetString(auth ?? Array.Empty<byte>());
                string digest = GenerateDigest(id);
                var ids = new List<Id> { new() { Scheme = "digest", IdValue = digest } };
                if (SuperDigest is not null && digest == SuperDigest) ids.Add(new Id { Scheme = "super", IdValue = "" });
                return ids;
            }
            case "ip":
                return new List<Id> { new() { Scheme = "ip", IdValue = RemoteIp(remote) } };
            default:
                // sasl and x509 ids come from the SASL exchange and the TLS handshake, not an AuthPacket
                return null;
        }
    }

    public static string RemoteIp(EndPoint? remote) => remote is IPEndPoint ip ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString() : "";

    /// <summary>Upstream ServerAuthenticationProvider.isAuthenticated: digest, sasl and x509 (not ip).</summary>
    private bool IsAuthenticatedScheme(string? scheme) => scheme is "digest" or "sasl" or "x509" && Schemes.Contains(scheme);

    private bool IsValid(string? scheme, string? id) => scheme is not null && Schemes.Contains(scheme) && scheme switch
    {
        "digest" => id is not null && id.Split(':').Length == 2,
        "ip" => id is not null && ParseIpExpr(id, out _, out _),
        "sasl" => id is not null && IsKerberosName(id),
        "x509" => id is not null && IsX500Name(id),
        _ => false,
    };

    /// <summary>Upstream SASLAuthenticationProvider.isValid: KerberosName's syntax; a name with
    /// '@' must be primary[/instance]@REALM, any name without '@' is valid.</summary>
    private static bool IsKerberosName(string id) =>
        !id.Contains('@') || System.Text.RegularExpressions.Regex.IsMatch(id, "^([^/@]*)(/([^/@]*))?@([^/@]*)$");

    /// <summary>Upstream X509AuthenticationProvider.isValid: new X500Principal(id) parses.</summary>
    private static bool IsX500Name(string id)
    {
        try { _ = new System.Security.Cryptography.X509Certificates.X500DistinguishedName(id); return true; }
        catch (System.Security.Cryptography.CryptographicException) { return false; }
    }

    /// <summary>Upstream fixupACL: rejects empty lists and unknown schemes, expands "auth" to the
    /// caller's authenticated ids, removes duplicates.</summary>
    public List<ACL> FixupAcl(string path, List<Id> authInfo, List<ACL>? acls)
    {
        var unique = new List<ACL>();
        if (acls is not null)
            foreach (var a in acls)
                if (!unique.Any(u => u.Perms == a.Perms && u.Id.Scheme == a.Id.Scheme && u.Id.IdValue == a.Id.IdValue)) unique.Add(a);
        if (unique.Count == 0) throw new KeeperException(Code.InvalidAcl, path);
        var rv = new List<ACL>();
        foreach (var a in unique)
        {
            var id = a.Id;
            if (id.Scheme is null) throw new KeeperException(Code.InvalidAcl, path);
            if (id.Scheme == "world" && id.IdValue == "anyone") rv.Add(a);
            else if (id.Scheme == "auth")
            {
                bool valid = false;
                foreach (var cid in authInfo)
                {
                    if (IsAuthenticatedScheme(cid.Scheme))
                    {
                        valid = true;
                        rv.Add(new ACL { Perms = a.Perms, Id = new Id { Scheme = cid.Scheme, IdValue = cid.IdValue } });
                    }
                }
                if (!valid) throw new KeeperException(Code.InvalidAcl, path);
            }
            else
            {
                if (!IsValid(id.Scheme, id.IdValue)) throw new KeeperException(Code.InvalidAcl, path);
                rv.Add(a);
            }
        }
        return rv;
    }

    /// <summary>Upstream checkACL: an empty ACL allows all; "super" allows all; otherwise some
    /// entry with an overlapping perm bit must match world:anyone or one of the caller's ids.</summary>
    public void Check(List<ACL>? acl, int perm, List<Id> authInfo, string path)
    {
        if (SkipAcl || acl is null || acl.Count == 0) return;
        foreach (var id in authInfo) if (id.Scheme == "super") return;
        foreach (var a in acl)
        {
            if ((a.Perms & perm) == 0) continue;
            if (a.Id.Scheme == "world" && a.Id.IdValue == "anyone") return;
            if (a.Id.Scheme is null || !Schemes.Contains(a.Id.Scheme)) continue;
            foreach (var id in authInfo)
                if (id.Scheme == a.Id.Scheme && Matches(id.Scheme, id.IdValue, a.Id.IdValue)) return;
        }
        throw new KeeperException(Code.NoAuth, path);
    }

    private bool Matches(string? scheme, string? id, string? expr)
    {
        // upstream SASLAuthenticationProvider.matches: the sasl id "super" matches every sasl ACL
        if (scheme == "sasl") return id == "super" || id == expr;
        // upstream X509AuthenticationProvider.matches: the configured superUser DN matches too
        if (scheme == "x509") return id == expr || (X509SuperUser is not null && id == X509SuperUser);
        if (scheme == "ip")
        {
            if (id is null || expr is null || !ParseIpExpr(expr, out var net, out int bits) || !IPAddress.TryParse(id, out var addr)) return false;
            var a = addr.GetAddressBytes();
            var n = net.GetAddressBytes();
            if (a.Length != n.Length) return false;
            for (int i = 0; i < bits; i++)
            {
                int mask = 0x80 >> (i % 8);
                if ((a[i / 8] & mask) != (n[i / 8] & mask)) return false;
            }
            return true;
        }
        return id == expr;
    }

    private static bool ParseIpExpr(string expr, out IPAddress addr, out int bits)
    {
        string a = expr;
        bits = -1;
        int slash = expr.IndexOf('/');
        if (slash >= 0)
        {
            a = expr.Substring(0, slash);
            if (!int.TryParse(expr.AsSpan(slash + 1), out bits)) { addr = IPAddress.None; return false; }
        }
        if (!IPAddress.TryParse(a, out addr!)) { addr = IPAddress.None; return false; }
        int max = addr.GetAddressBytes().Length * 8;
        if (bits < 0 || bits > max) bits = max;
        return true;
    }

    /// <summary>Upstream AuthUtil.getClientInfos: digest users are shown without their hash.</summary>
    public static List<ClientInfo> ClientInfos(List<Id> authInfo) => authInfo.Select(id => new ClientInfo
    {
        AuthScheme = id.Scheme,
        User = id.Scheme == "digest" && id.IdValue is not null && id.IdValue.Contains(':') ? id.IdValue.Substring(0, id.IdValue.IndexOf(':')) : id.IdValue,
    }).ToList();
}
