// DescribeDelegationToken (key 41), versions 0-3 (v3 adds each token's requester).
//
// Behaviour (KafkaApis.handleDescribeTokensRequest, DelegationTokenManager.filterToken): the same
// NOT_ALLOWED / AUTH_DISABLED gates as CreateDelegationToken; an empty owner list answers no
// tokens, a null list every visible token. A token is listed when (owners given) one of the
// owners is its owner, requester or renewer, and the caller is its owner/requester/renewer, or has
// DESCRIBE on DELEGATION_TOKEN:<id>, or DESCRIBE_TOKENS on USER:<owner>.
// Differs: none known.
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Security.Tokens;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeDelegationTokenHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeDelegationTokenRequest request)
    {
        var tokens = context.Broker.Tokens;
        if (!TokenRequests.Allowed(context.Session))
            return ValueTask.FromResult<IKafkaMessage?>(new DescribeDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenRequestNotAllowed });
        if (!tokens.Enabled)
            return ValueTask.FromResult<IKafkaMessage?>(new DescribeDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenAuthDisabled });
        var response = new DescribeDelegationTokenResponse();
        if (request.Owners is { Count: 0 }) return ValueTask.FromResult<IKafkaMessage?>(response);
        var owners = request.Owners?.Select(o => new KafkaPrincipal(o.PrincipalType, o.PrincipalName)).ToList();
        var caller = context.Session.Principal;
        bool v3 = context.ApiVersion >= 3;
        bool Eligible(DelegationToken t)
        {
            if (owners is not null && !owners.Any(t.OwnerOrRenewer)) return false;
            if (t.OwnerOrRenewer(caller)) return true;
            return Authz.Allowed(context, AclOperation.Describe, ResourceType.DelegationToken, t.TokenId, logIfDenied: false)
                || Authz.Allowed(context, AclOperation.DescribeTokens, ResourceType.User, t.Owner.ToString(), logIfDenied: false);
        }
        foreach (var t in tokens.Tokens(Eligible))
        {
            var d = new DescribeDelegationTokenResponse.DescribedDelegationToken
            {
                PrincipalType = t.Owner.Type, PrincipalName = t.Owner.Name,
                // The requester exists from v3 on (upstream sets it only there).
                TokenRequesterPrincipalType = v3 ? t.Requester.Type : "", TokenRequesterPrincipalName = v3 ? t.Requester.Name : "",
                IssueTimestamp = t.IssueTimestamp, ExpiryTimestamp = t.ExpiryTimestamp, MaxTimestamp = t.MaxTimestamp,
                TokenId = t.TokenId, Hmac = tokens.Hmac(t.TokenId),
            };
            foreach (var r in t.Renewers)
                d.Renewers.Add(new DescribeDelegationTokenResponse.DescribedDelegationTokenRenewer { PrincipalType = r.Type, PrincipalName = r.Name });
            response.Tokens.Add(d);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
