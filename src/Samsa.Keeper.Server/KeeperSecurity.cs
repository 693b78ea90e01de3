using Samsa.Keeper.Protocol;

namespace Samsa.Keeper.Server;

/// <summary>A security setting the Keeper cannot honour; the start stops with this one line.</summary>
public sealed class KeeperConfigException(string message) : Exception(message);

/// <summary>The Keeper's authentication setup, checked once at start (upstream ProviderRegistry,
/// ServerCnxnFactory.configureSaslLogin, SaslServerCallbackHandler and AuthenticationHelper):
/// the registered auth schemes, the DIGEST-MD5 users of the JAAS Server section, and whether
/// sessions must authenticate before any request.
/// Differs from upstream: an authProvider class the Keeper does not have, a Kerberos login
/// module in the Server section and keys it cannot apply stop the start (upstream logs
/// "Problems loading" and runs without the provider, i.e. with weaker security than configured).</summary>
public sealed class KeeperSecurity
{
    public const string SaslProviderClass = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
    public const string X509ProviderClass = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

    private static readonly Dictionary<string, string> KnownProviders = new(StringComparer.Ordinal)
    {
        [SaslProviderClass] = "sasl",
        [X509ProviderClass] = "x509",
        ["org.apache.zookeeper.server.auth.DigestAuthenticationProvider"] = "digest",
        ["org.apache.zookeeper.server.auth.IPAuthenticationProvider"] = "ip",
    };

    /// <summary>Schemes with a provider: ip and digest always (upstream ProviderRegistry.initialize), plus authProvider.N.</summary>
    public HashSet<string> Schemes { get; } = new(StringComparer.Ordinal) { "ip", "digest" };

    /// <summary>DIGEST-MD5 users from the JAAS Server section, or null when no JAAS file is given
    /// (then SASL packets are answered with an empty token, as upstream without a SaslServer).</summary>
    public Dictionary<string, string>? SaslUsers { get; private set; }

    public string? SaslSuperPassword { get; private set; }
    public IReadOnlyList<string> SaslSuperUsers { get; private set; } = Array.Empty<string>();
    public bool EnforceAuthEnabled { get; private set; }
    public IReadOnlyList<string> EnforceAuthSchemes { get; private set; } = Array.Empty<string>();
    /// <summary>Upstream AuthenticationHelper.isSaslAuthRequired: a failed SASL exchange is answered
    /// SessionClosedRequireSaslAuth instead of AuthFailed.</summary>
    public bool SaslAuthRequired => EnforceAuthEnabled && EnforceAuthSchemes.Contains("sasl");
    public bool AllowSaslFailedClients { get; private set; }

    /// <exception cref="KeeperConfigException">A setting that cannot be honoured.</exception>
    public static KeeperSecurity Create(KeeperConfig c)
    {
        var s = new KeeperSecurity();
        if (c.UnsupportedSecurityKeys.Count > 0)
            throw new KeeperConfigException($"{c.UnsupportedSecurityKeys[0]} is not supported by the Keeper; remove it");
        foreach (var (n, cls) in c.AuthProviders)
        {
            if (!KnownProviders.TryGetValue(cls.Trim(), out var scheme))
                throw new KeeperConfigException($"authProvider.{n}={cls}: the Keeper has no such authentication provider (it has {string.Join(", ", KnownProviders.Keys)}); remove it");
            s.Schemes.Add(scheme);
        }
        if (c.JaasConfigPath is not null)
        {
            JaasFile jaas;
            try { jaas = JaasFile.Load(c.JaasConfigPath); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                throw new KeeperConfigException($"cannot read JAAS configuration {c.JaasConfigPath}: {e.Message}");
            }
            // upstream ServerCnxnFactory.configureSaslLogin: a JAAS file without the section stops the server
            var section = jaas.Section(c.SaslServerSection)
                ?? throw new KeeperConfigException($"No JAAS configuration section named '{c.SaslServerSection}' was found in '{c.JaasConfigPath}'.");
            var users = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var e in section)
            {
                if (e.LoginModule.Contains("Krb5LoginModule", StringComparison.Ordinal))
                    throw new KeeperConfigException($"JAAS section '{c.SaslServerSection}' uses {e.LoginModule}: Kerberos (GSSAPI) is not supported by the Keeper, only DIGEST-MD5 (org.apache.zookeeper.server.auth.DigestLoginModule)");
                foreach (var (k, v) in e.Options)
                    if (k.StartsWith("user_", StringComparison.Ordinal)) users[k.Substring("user_".Length)] = v;
            }
            s.SaslUsers = users;
        }
        s.SaslSuperPassword = c.SaslSuperPassword;
        s.SaslSuperUsers = c.SaslSuperUsers.ToList();
        s.AllowSaslFailedClients = c.AllowSaslFailedClients;
        // upstream AuthenticationHelper.initConfigurations / validateConfiguredProperties
        if (c.SessionRequireClientSaslAuth)
        {
            s.EnforceAuthEnabled = true;
            s.EnforceAuthSchemes = new[] { "sasl" };
        }
        else
        {
            s.EnforceAuthEnabled = c.EnforceAuthEnabled;
            s.EnforceAuthSchemes = c.EnforceAuthSchemes.ToList();
        }
        if (s.EnforceAuthEnabled)
        {
            if (s.EnforceAuthSchemes.Count == 0)
                throw new KeeperConfigException("zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be  configured.");
            foreach (var scheme in s.EnforceAuthSchemes)
                if (!s.Schemes.Contains(scheme))
                    throw new KeeperConfigException($"Authentication scheme {scheme} is not available." + (scheme == "sasl" ? $" (add authProvider.1={SaslProviderClass})" : ""));
        }
        return s;
    }

    /// <summary>The password of a DIGEST-MD5 user (upstream SaslServerCallbackHandler: "super" may
    /// take its password from zookeeper.SASLAuthenticationProvider.superPassword).</summary>
    public string? SaslPassword(string user)
    {
        if (user == "super" && SaslSuperPassword is not null) return SaslSuperPassword;
        return SaslUsers is not null && SaslUsers.TryGetValue(user, out var p) ? p : null;
    }

    /// <summary>Upstream ZooKeeperServer.isSaslSuperUser.</summary>
    public bool IsSaslSuperUser(string? id) => !string.IsNullOrEmpty(id) && SaslSuperUsers.Contains(id);
}
