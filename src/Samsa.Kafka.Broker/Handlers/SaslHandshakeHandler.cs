// SaslHandshake (key 17), versions 0-1.
//
// Behaviour (SaslServerAuthenticator.handleHandshakeRequest): on a SASL listener the client names a
// mechanism; an enabled one is accepted and the exchange continues with SaslAuthenticate (v1) or
// with raw length-prefixed tokens without a Kafka header (v0, old clients); a disabled one gets
// UNSUPPORTED_SASL_MECHANISM with the enabled list and the connection closes. On an authenticated
// connection of a client that re-authenticates (KIP-368) the mechanism must stay the same. On a
// listener without SASL (and after authentication otherwise) the answer is ILLEGAL_SASL_STATE, as
// KafkaApis.handleSaslHandshakeRequest.
// Differs: the connection gate for other requests lives in Security/Sasl/SaslService.
using Samsa.Kafka.Broker.Security.Sasl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class SaslHandshakeHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, SaslHandshakeRequest request)
    {
        var session = context.Session;
        if (session.Sasl is not SaslConnectionState st || st.Stage is not (SaslStage.HandshakeOrVersions or SaslStage.Handshake))
            return Answer(new SaslHandshakeResponse { ErrorCode = (short)ErrorCode.IllegalSaslState });
        var sasl = context.Broker.Sasl;
        var enabled = sasl.SettingsOf(session.ListenerName)?.Mechanisms ?? [];
        var response = new SaslHandshakeResponse();
        response.Mechanisms.AddRange(enabled);
        if (!enabled.Contains(request.Mechanism))
        {
            context.Broker.Log($"closing connection {context.Connection?.RemoteEndPoint}: Unsupported SASL mechanism {request.Mechanism}");
            st.CloseAfterResponse = true;
            response.ErrorCode = (short)ErrorCode.UnsupportedSaslMechanism;
            return Answer(response);
        }
        if (st.Reauthenticating && st.Mechanism != request.Mechanism)
        {
            // Upstream ReauthInfo: the mechanism of a re-authentication must match the original one.
            context.Broker.Log($"closing connection {context.Connection?.RemoteEndPoint}: SASL mechanism changed from {st.Mechanism} to {request.Mechanism} during re-authentication");
            st.CloseAfterResponse = true;
            response.ErrorCode = (short)ErrorCode.IllegalSaslState;
            return Answer(response);
        }
        st.Mechanism = request.Mechanism;
        st.Server = sasl.CreateServer(session.ListenerName, request.Mechanism);
        st.Stage = SaslStage.Authenticate;
        st.RawTokens = context.ApiVersion == 0;
        return Answer(response);
    }

    private static ValueTask<IKafkaMessage?> Answer(SaslHandshakeResponse r) => ValueTask.FromResult<IKafkaMessage?>(r);
}
