using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Samsa.Keeper.Protocol;

/// <summary>A key or trust store setting that cannot be used; the message is one line.</summary>
public sealed class TlsStoreException(string message) : Exception(message);

/// <summary>ZooKeeper's key and trust stores (upstream X509Util.loadKeyStore/loadTrustStore with
/// KeyStoreFileType): PKCS12 and PEM; the type comes from *.type or, when absent, from the file
/// name (.p12, .pem, .jks). A real JKS file (magic 0xFEEDFEED) cannot be read by .NET and is
/// refused with the keytool line that converts it; a ".jks" file that is PKCS12 inside (what
/// keytool writes by default since Java 9) is read as PKCS12, as the JDK's JKS loader does.</summary>
public static class TlsStores
{
    public enum StoreType { Pkcs12, Pem }

    public static StoreType ResolveType(string what, string location, string? type)
    {
        string? t = string.IsNullOrWhiteSpace(type) ? null : type.Trim().ToUpperInvariant();
        if (t is null)
        {
            string lower = location.ToLowerInvariant();
            if (lower.EndsWith(".p12", StringComparison.Ordinal) || lower.EndsWith(".pfx", StringComparison.Ordinal)) t = "PKCS12";
            else if (lower.EndsWith(".pem", StringComparison.Ordinal) || lower.EndsWith(".crt", StringComparison.Ordinal)) t = "PEM";
            else if (lower.EndsWith(".jks", StringComparison.Ordinal)) t = "JKS";
            else throw new TlsStoreException($"{what} {location}: unable to auto-detect store file type from file name; set its type (PKCS12 or PEM)");
        }
        switch (t)
        {
            case "PKCS12": return StoreType.Pkcs12;
            case "PEM": return StoreType.Pem;
            case "JKS":
                if (IsJks(location))
                    throw new TlsStoreException($"{what} {location} is a JKS keystore, which Samsa cannot read; convert it: keytool -importkeystore -srckeystore {location} -destkeystore {Path.ChangeExtension(location, ".p12")} -deststoretype PKCS12, then set the type to PKCS12");
                return StoreType.Pkcs12;
            default:
                throw new TlsStoreException($"{what} {location}: store type {type} is not supported (PKCS12 or PEM; convert JKS and BCFKS with keytool -importkeystore -deststoretype PKCS12)");
        }
    }

    private static bool IsJks(string location)
    {
        try
        {
            using var f = File.OpenRead(location);
            Span<byte> magic = stackalloc byte[4];
            return f.Read(magic) == 4 && magic[0] == 0xFE && magic[1] == 0xED && magic[2] == 0xFE && magic[3] == 0xED;
        }
        catch (IOException) { return false; }
    }

    /// <summary>The store password: the password setting, else the first line of the passwordPath file (3.8's *.passwordPath).</summary>
    public static string? Password(string? password, string? passwordPath)
    {
        if (!string.IsNullOrEmpty(password)) return password;
        if (string.IsNullOrEmpty(passwordPath)) return password;
        return File.ReadAllText(passwordPath).Split('\n')[0].TrimEnd('\r');
    }

    /// <summary>A key store: the certificate with its private key and the chain after it.</summary>
    public static (X509Certificate2 Certificate, X509Certificate2Collection Chain) LoadKeyStore(string what, string location, string? password, string? type)
    {
        var st = ResolveType(what, location, type);
        try
        {
            if (st == StoreType.Pkcs12)
            {
                var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(location, password ?? "", X509KeyStorageFlags.Exportable);
                var leaf = all.FirstOrDefault(c => c.HasPrivateKey) ?? throw new TlsStoreException($"{what} {location} holds no private key");
                var chain = new X509Certificate2Collection();
                foreach (var c in all) if (!ReferenceEquals(c, leaf)) chain.Add(c);
                return (leaf, chain);
            }
            string text = File.ReadAllText(location);
            var certs = PemBlocks(text, "CERTIFICATE");
            if (certs.Count == 0) throw new TlsStoreException($"{what} {location} holds no CERTIFICATE");
            string? key = PemBlocks(text, "ENCRYPTED PRIVATE KEY").FirstOrDefault();
            X509Certificate2 cert;
            if (key is not null)
            {
                if (string.IsNullOrEmpty(password)) throw new TlsStoreException($"{what} {location} has an encrypted private key but no password");
                cert = X509Certificate2.CreateFromEncryptedPem(certs[0], key, password);
            }
            else
            {
                key = PemBlocks(text, "PRIVATE KEY").Concat(PemBlocks(text, "RSA PRIVATE KEY")).Concat(PemBlocks(text, "EC PRIVATE KEY")).FirstOrDefault()
                    ?? throw new TlsStoreException($"{what} {location} holds no PRIVATE KEY");
                cert = X509Certificate2.CreateFromPem(certs[0], key);
            }
            var rest = new X509Certificate2Collection();
            foreach (var c in certs.Skip(1)) rest.Add(X509Certificate2.CreateFromPem(c));
            return (cert, rest);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsStoreException($"cannot load {what} {location}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>A trust store: the certificates it trusts.</summary>
    public static X509Certificate2Collection LoadTrustStore(string what, string location, string? password, string? type)
    {
        var st = ResolveType(what, location, type);
        try
        {
            var result = new X509Certificate2Collection();
            if (st == StoreType.Pkcs12)
            {
                foreach (var c in X509CertificateLoader.LoadPkcs12CollectionFromFile(location, password ?? "")) result.Add(c);
            }
            else
            {
                foreach (var c in PemBlocks(File.ReadAllText(location), "CERTIFICATE")) result.Add(X509Certificate2.CreateFromPem(c));
            }
            if (result.Count == 0) throw new TlsStoreException($"{what} {location} holds no certificates");
            return result;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsStoreException($"cannot load {what} {location}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    private static List<string> PemBlocks(string text, string label)
    {
        var list = new List<string>();
        string begin = $"-----BEGIN {label}-----", end = $"-----END {label}-----";
        int i = 0;
        while ((i = text.IndexOf(begin, i, StringComparison.Ordinal)) >= 0)
        {
            int e = text.IndexOf(end, i, StringComparison.Ordinal);
            if (e < 0) break;
            list.Add(text.Substring(i, e + end.Length - i));
            i = e + end.Length;
        }
        return list;
    }

    /// <summary>A certificate subject as Java's X500Principal.getName() writes it (RFC 2253: most
    /// specific RDN first, "," without spaces, upstream's keywords) — the id upstream's
    /// X509AuthenticationProvider gives a client.</summary>
    public static string Rfc2253(X500DistinguishedName dn)
    {
        var parts = new List<string>();
        foreach (var rdn in dn.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.HasMultipleElements)
            {
                // multi-valued RDNs are rare in client certificates; fall back to .NET's rendering
                parts.Add(rdn.RawData.Length > 0 ? new X500DistinguishedName(rdn.RawData.ToArray()).Name.Replace(" + ", "+") : "");
                continue;
            }
            var oid = rdn.GetSingleElementType();
            string key = oid.Value switch
            {
                "2.5.4.3" => "CN", "2.5.4.6" => "C", "2.5.4.7" => "L", "2.5.4.8" => "ST", "2.5.4.10" => "O",
                "2.5.4.11" => "OU", "2.5.4.9" => "STREET", "0.9.2342.19200300.100.1.25" => "DC", "0.9.2342.19200300.100.1.1" => "UID",
                _ => oid.Value ?? "",
            };
            parts.Add(key + "=" + Escape(rdn.GetSingleElementValue() ?? ""));
        }
        return string.Join(",", parts);
    }

    private static string Escape(string v)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < v.Length; i++)
        {
            char c = v[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' || (i == 0 && c is '#' or ' ') || (i == v.Length - 1 && c == ' ')) sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
