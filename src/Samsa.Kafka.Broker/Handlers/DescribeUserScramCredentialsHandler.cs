// DescribeUserScramCredentials (key 50), version 0.
//
// Behaviour (ZkAdminManager.describeUserScramCredentials): a null or empty user list describes
// every user that has a SCRAM credential; named users are answered one result each — a name given
// twice gets DUPLICATE_RESOURCE, a user without credentials RESOURCE_NOT_FOUND. Only mechanisms and
// iteration counts are returned, never salts or keys.
// Differs: authorization (DESCRIBE on CLUSTER) is the authorizer's part.
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeUserScramCredentialsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeUserScramCredentialsRequest request)
    {
        // Upstream KafkaApis.handleDescribeUserScramCredentialsRequest: DESCRIBE on the cluster.
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Describe))
            return ValueTask.FromResult<IKafkaMessage?>(new DescribeUserScramCredentialsResponse
            {
                ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed,
                ErrorMessage = "Cluster authorization failed.",
            });
        var all = context.Broker.Sasl.Credentials.Snapshot();
        var response = new DescribeUserScramCredentialsResponse { ErrorMessage = null };
        void Add(string user, IReadOnlyDictionary<string, ScramCredential> creds)
        {
            var r = new DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult { User = user, ErrorMessage = null };
            foreach (var m in ScramMechanism.All)
                if (creds.TryGetValue(m.Name, out var c))
                    r.CredentialInfos.Add(new DescribeUserScramCredentialsResponse.CredentialInfo { Mechanism = m.Type, Iterations = c.Iterations });
            response.Results.Add(r);
        }
        if (request.Users is not { Count: > 0 } users)
        {
            foreach (var (user, creds) in all.OrderBy(kv => kv.Key, StringComparer.Ordinal)) Add(user, creds);
            return ValueTask.FromResult<IKafkaMessage?>(response);
        }
        var counts = users.GroupBy(u => u.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var name in counts.Keys)
        {
            if (counts[name] > 1)
                response.Results.Add(new() { User = name, ErrorCode = (short)ErrorCode.DuplicateResource,
                    ErrorMessage = $"Cannot describe SCRAM credentials for the same user twice in a single request: {name}" });
            else if (!all.TryGetValue(name, out var creds))
                response.Results.Add(new() { User = name, ErrorCode = (short)ErrorCode.ResourceNotFound,
                    ErrorMessage = $"Attempt to describe a user credential that does not exist: {name}" });
            else Add(name, creds);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
