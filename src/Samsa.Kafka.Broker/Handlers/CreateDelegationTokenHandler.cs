// CreateDelegationToken (key 38), versions 0-3 (v3: owner named by the request, requester in the response; KIP-373).
//
// Behaviour (KafkaApis.handleCreateTokenRequest, DelegationTokenManager.createToken): refused with
// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on PLAINTEXT, on a one-way TLS (ANONYMOUS) connection and on a
// connection that authenticated with a token; DELEGATION_TOKEN_AUTH_DISABLED without
// delegation.token.secret.key; a token for another owner needs CREATE_TOKENS on USER:<owner>
// (else DELEGATION_TOKEN_AUTHORIZATION_FAILED); renewers must be of type User (INVALID_PRINCIPAL_TYPE).
// Max lifetime: the request's, capped at delegation.token.max.lifetime.ms (-1 or 0 = the cap);
// expiry: now + delegation.token.expiry.time.ms, not past the max.
// Differs: none known.
using Samsa.Kafka.Broker.Security;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Broker.Security.Tokens;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class CreateDelegationTokenHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, CreateDelegationTokenRequest request)
    {
        var requester = context.Session.Principal;
        bool v3 = context.ApiVersion >= 3;
        var owner = string.IsNullOrEmpty(request.OwnerPrincipalName)
            ? requester
            : new KafkaPrincipal(request.OwnerPrincipalType ?? KafkaPrincipal.UserType, request.OwnerPrincipalName);
        CreateDelegationTokenResponse Error(ErrorCode code) => new()
        {
            ErrorCode = (short)code,
            PrincipalType = owner.Type, PrincipalName = owner.Name,
            // Upstream prepareResponse sets the requester only where the version has it (v3+).
            TokenRequesterPrincipalType = v3 ? requester.Type : "", TokenRequesterPrincipalName = v3 ? requester.Name : "",
            IssueTimestampMs = -1, ExpiryTimestampMs = -1, MaxTimestampMs = -1, TokenId = "", Hmac = [],
        };
        var tokens = context.Broker.Tokens;
        if (!TokenRequests.Allowed(context.Session)) return Error(ErrorCode.DelegationTokenRequestNotAllowed);
        if (!tokens.Enabled) return Error(ErrorCode.DelegationTokenAuthDisabled);
        if (owner != requester && !Authz.Allowed(context, AclOperation.CreateTokens, ResourceType.User, owner.ToString()))
            return Error(ErrorCode.DelegationTokenAuthorizationFailed);
        var renewers = request.Renewers.Select(r => new KafkaPrincipal(r.PrincipalType, r.PrincipalName)).ToList();
        if (renewers.Any(r => r.Type != KafkaPrincipal.UserType)) return Error(ErrorCode.InvalidPrincipalType);
        var t = await tokens.CreateAsync(owner, requester, renewers, request.MaxLifetimeMs);
        return new CreateDelegationTokenResponse
        {
            PrincipalType = t.Owner.Type, PrincipalName = t.Owner.Name,
            TokenRequesterPrincipalType = v3 ? t.Requester.Type : "", TokenRequesterPrincipalName = v3 ? t.Requester.Name : "",
            IssueTimestampMs = t.IssueTimestamp, ExpiryTimestampMs = t.ExpiryTimestamp, MaxTimestampMs = t.MaxTimestamp,
            TokenId = t.TokenId, Hmac = tokens.Hmac(t.TokenId),
        };
    }
}
