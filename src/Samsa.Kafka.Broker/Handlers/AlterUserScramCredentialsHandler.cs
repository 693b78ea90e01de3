// AlterUserScramCredentials (key 51), version 0.
//
// Behaviour (ZkAdminManager.alterUserScramCredentials): upsertions carry a client-computed salted
// password (Hi() of RFC 5802) from which the broker derives StoredKey and ServerKey; checks per
// user, in upstream's order — the same user and mechanism twice in the request: DUPLICATE_RESOURCE;
// an empty user name: UNACCEPTABLE_CREDENTIAL; an unknown mechanism: UNSUPPORTED_SASL_MECHANISM;
// iterations outside 4096..16384: UNACCEPTABLE_CREDENTIAL ("Too few/many iterations"); deleting a
// credential that does not exist: RESOURCE_NOT_FOUND. A user with any error is left unchanged.
// Written to /config/users/<user> with a users/<user> change notification (ZooKeeper mode), or to
// scram-credentials.json in the first log dir (single node).
// Differs: authorization (ALTER on CLUSTER) is the authorizer's part.
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterUserScramCredentialsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterUserScramCredentialsRequest request)
    {
        var store = context.Broker.Sasl.Credentials;
        var errors = new Dictionary<string, (ErrorCode, string)>(StringComparer.Ordinal);
        var users = new List<string>();
        void Touch(string u) { if (!users.Contains(u)) users.Add(u); }
        void Fail(string u, ErrorCode code, string message) => errors.TryAdd(u, (code, message));

        var pairs = request.Deletions.Select(d => (d.Name, d.Mechanism)).Concat(request.Upsertions.Select(u => (u.Name, u.Mechanism))).ToList();
        foreach (var (name, _) in pairs) Touch(name);
        // Upstream KafkaApis.handleAlterUserScramCredentialsRequest: ALTER on the cluster, else
        // every user answers CLUSTER_AUTHORIZATION_FAILED.
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter))
        {
            var denied = new AlterUserScramCredentialsResponse();
            foreach (var u in users) denied.Results.Add(new() { User = u, ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." });
            return denied;
        }
        foreach (var dup in pairs.GroupBy(p => p).Where(g => g.Count() > 1))
            Fail(dup.Key.Name, ErrorCode.DuplicateResource, "A user credential cannot be altered twice in the same request");
        foreach (var (name, mech) in pairs)
        {
            if (name.Length == 0) Fail(name, ErrorCode.UnacceptableCredential, "Username must not be empty");
            else if (ScramMechanism.ByType(mech) is null) Fail(name, ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism");
        }
        foreach (var u in request.Upsertions)
        {
            if (u.Iterations < ScramMechanism.MinIterations) Fail(u.Name, ErrorCode.UnacceptableCredential, "Too few iterations");
            else if (u.Iterations > ScramMechanism.MaxIterations) Fail(u.Name, ErrorCode.UnacceptableCredential, "Too many iterations");
        }
        foreach (var d in request.Deletions)
            if (ScramMechanism.ByType(d.Mechanism) is { } m && store.Get(d.Name, m) is null)
                Fail(d.Name, ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist");

        var response = new AlterUserScramCredentialsResponse();
        foreach (var user in users)
        {
            if (errors.TryGetValue(user, out var e))
            {
                response.Results.Add(new() { User = user, ErrorCode = (short)e.Item1, ErrorMessage = e.Item2 });
                continue;
            }
            var upserts = new Dictionary<string, ScramCredential>(StringComparer.Ordinal);
            foreach (var u in request.Upsertions.Where(u => u.Name == user))
            {
                var m = ScramMechanism.ByType(u.Mechanism)!;
                upserts[m.Name] = m.CredentialFromSaltedPassword(u.Salt ?? [], u.SaltedPassword ?? [], u.Iterations);
            }
            var deletions = request.Deletions.Where(d => d.Name == user).Select(d => ScramMechanism.ByType(d.Mechanism)!.Name).ToList();
            try
            {
                await store.AlterAsync(user, upserts, deletions);
                response.Results.Add(new() { User = user, ErrorMessage = null });
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or Samsa.Keeper.Client.KeeperException)
            {
                context.Broker.Log($"AlterUserScramCredentials for {user} failed: {ex.Message}");
                response.Results.Add(new() { User = user, ErrorCode = (short)ErrorCode.UnknownServerError, ErrorMessage = ex.Message });
            }
        }
        return response;
    }
}
