// ExpireDelegationToken (key 40), versions 0-2.
//
// Behaviour (KafkaApis.handleExpireTokenRequest, DelegationTokenManager.expireToken): gates and
// errors as RenewDelegationToken; a negative period removes the token at once (the response
// carries now), otherwise the expiry becomes now + the period, never past the max time.
// Differs: none known.
using Samsa.Kafka.Broker.Security.Tokens;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ExpireDelegationTokenHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ExpireDelegationTokenRequest request)
    {
        var tokens = context.Broker.Tokens;
        if (!TokenRequests.Allowed(context.Session))
            return new ExpireDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenRequestNotAllowed, ExpiryTimestampMs = -1 };
        if (!tokens.Enabled)
            return new ExpireDelegationTokenResponse { ErrorCode = (short)ErrorCode.DelegationTokenAuthDisabled, ExpiryTimestampMs = -1 };
        var (error, expiry) = await tokens.ExpireAsync(context.Session.Principal, request.Hmac ?? [], request.ExpiryTimePeriodMs);
        return new ExpireDelegationTokenResponse { ErrorCode = (short)error, ExpiryTimestampMs = expiry };
    }
}
