// RenewDelegationToken (key 39), versions 0-2.
//
// Behaviour (KafkaApis.handleRenewTokenRequest, DelegationTokenManager.renewToken): the same
// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED / DELEGATION_TOKEN_AUTH_DISABLED gates as CreateDelegationToken;
// an unknown HMAC is DELEGATION_TOKEN_NOT_FOUND; only the owner, the requester or a renewer may
// renew (DELEGATION_TOKEN_OWNER_MISMATCH); an expired token is DELEGATION_TOKEN_EXPIRED; the new
// expiry is now + the period (-1 = delegation.token.expiry.time.ms), never past the max time.
// Differs: none known.
using Samsa.Kafka.Broker.Security.Tokens;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class RenewDelegationTokenHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, RenewDelegationTokenRequest request)
    {
        var tokens = context.Broker.Tokens;
        if (!TokenRequests.Allowed(context.Session))
            return new RenewDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenRequestNotAllowed, ExpiryTimestampMs = -1 };
        if (!tokens.Enabled)
            return new RenewDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenAuthDisabled, ExpiryTimestampMs = -1 };
        var (error, expiry) = await tokens.RenewAsync(context.Session.Principal, request.Hmac ?? [], request.RenewPeriodMs);
        return new RenewDelegationTokenResponse { ErrorCode = (short)error, ExpiryTimestampMs = expiry };
    }
}
