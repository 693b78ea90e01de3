// SaslAuthenticate (key 36), versions 0-2.
//
// Behaviour (SaslServerAuthenticator.handleSaslToken with Kafka headers, KIP-152): each request
// carries one token of the mechanism chosen by SaslHandshake v1; the answer carries the server's
// challenge. On success the connection's principal becomes User:<name>, and v1+ answers carry
// session_lifetime_ms (KIP-368: connections.max.reauth.ms and the credential's expiry). A failure
// answers SASL_AUTHENTICATION_FAILED with upstream's message after
// connection.failed.authentication.delay.ms, then closes. Without a preceding handshake:
// ILLEGAL_SASL_STATE and close; on a listener without SASL or after authentication:
// ILLEGAL_SASL_STATE (KafkaApis.handleSaslAuthenticateRequest).
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class SaslAuthenticateHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, SaslAuthenticateRequest request)
    {
        var session = context.Session;
        if (session.Sasl is not SaslConnectionState st || st.Stage == SaslStage.Complete)
            return new SaslAuthenticateResponse
            {
                ErrorCode = (short)ErrorCode.IllegalSaslState,
                ErrorMessage = "SaslAuthenticate request received after successful authentication",
            };
        if (st.Stage != SaslStage.Authenticate || st.RawTokens || st.Server is null)
        {
            context.Broker.Log($"closing connection {context.Connection?.RemoteEndPoint}: Unexpected Kafka request of type SASL_AUTHENTICATE during SASL handshake.");
            st.CloseAfterResponse = true;
            return new SaslAuthenticateResponse
            {
                ErrorCode = (short)ErrorCode.IllegalSaslState,
                ErrorMessage = "Unexpected Kafka request of type SASL_AUTHENTICATE during SASL handshake.",
            };
        }
        st.AuthenticateVersion = context.ApiVersion;
        var outcome = await context.Broker.Sasl.EvaluateAsync(context.Connection, session, st, request.AuthBytes ?? []);
        return outcome.Error is not null
            ? new SaslAuthenticateResponse { ErrorCode = (short)ErrorCode.SaslAuthenticationFailed, ErrorMessage = outcome.Error, AuthBytes = [] }
            : new SaslAuthenticateResponse { AuthBytes = outcome.Challenge, SessionLifetimeMs = outcome.SessionLifetimeMs };
    }
}
